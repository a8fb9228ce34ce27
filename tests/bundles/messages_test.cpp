#include <catch2/catch.hpp>

#include "bundles/hash.hpp"
#include "bundles/messages.hpp"

using namespace sovdev;

namespace {
pb::FetchRequest good_request() {
  pb::FetchRequest r;
  r.set_schema(1);
  r.set_agent_id("edge-01");
  r.set_request_id(7);
  r.set_manifest_digest(sha256("m"));
  auto* range = r.add_chunks();
  range->set_first(0);
  range->set_count(8);
  return r;
}
}  // namespace

TEST_CASE("a well-formed fetch request parses", "[messages]") {
  auto r = parse_fetch_request(good_request().SerializeAsString());
  REQUIRE(r);
  CHECK(r->agent_id() == "edge-01");
}

TEST_CASE("fetch requests with hostile fields are refused", "[messages]") {
  auto req = good_request();
  req.set_agent_id("edge/#");
  CHECK_THAT(parse_fetch_request(req.SerializeAsString()).error().message,
             Catch::Contains("bad agent id"));
  req = good_request();
  req.set_manifest_digest("short");
  CHECK_FALSE(parse_fetch_request(req.SerializeAsString()));
  req = good_request();
  req.mutable_chunks(0)->set_first(UINT32_MAX);
  CHECK_THAT(parse_fetch_request(req.SerializeAsString()).error().message,
             Catch::Contains("overflows"));
  req = good_request();
  req.mutable_chunks(0)->set_count(100000);
  CHECK_THAT(parse_fetch_request(req.SerializeAsString()).error().message,
             Catch::Contains("more than 256"));
  CHECK(parse_fetch_request(std::string(kMaxFetchRequestBytes + 1, 'x')).error().code ==
        Errc::too_large);
  CHECK_FALSE(parse_fetch_request("\xff\xff\xff\xff"));
}

TEST_CASE("a fetch response must carry exactly one well-sized body", "[messages]") {
  pb::FetchResponse resp;
  resp.set_manifest_digest(sha256("m"));
  CHECK_THAT(parse_fetch_response(resp.SerializeAsString()).error().message,
             Catch::Contains("carries nothing"));
  resp.mutable_chunk()->set_index(3);
  resp.mutable_chunk()->set_data(std::string(100, 'z'));
  CHECK(parse_fetch_response(resp.SerializeAsString()));
}

TEST_CASE("a request for an image blob names the blob alone", "[messages]") {
  pb::FetchRequest req = good_request();
  req.clear_manifest_digest();
  req.set_blob(sha256("wire"));
  req.set_want_manifest(true);
  REQUIRE(parse_fetch_request(req.SerializeAsString()));
  auto with = [&](auto change) {
    pb::FetchRequest r = req;
    change(r);
    return parse_fetch_request(r.SerializeAsString());
  };
  CHECK(with([](auto& r) { r.set_blob_base(sha256("held layer")); }));
  CHECK_FALSE(with([](auto& r) { r.set_blob("short"); }));
  CHECK_FALSE(with([](auto& r) { r.set_manifest_digest(sha256("m")); }));
  CHECK_FALSE(with([](auto& r) { r.set_blob_base("short"); }));
  CHECK_FALSE(with([](auto& r) { r.set_base_digest(sha256("b")); }));
  CHECK_FALSE(with([](auto& r) { r.set_delta(true); }));
  CHECK_FALSE(with([](auto& r) { r.mutable_epoch_key()->set_channel("edge"); }));
  CHECK_THAT(with([](auto& r) { r.mutable_chunks(0)->set_count(100000); }).error().message,
             Catch::Contains("more than 256"));
  // A blob base belongs to a blob request only.
  pb::FetchRequest bundle = good_request();
  bundle.set_blob_base(sha256("held layer"));
  CHECK_FALSE(parse_fetch_request(bundle.SerializeAsString()));
}

TEST_CASE("a blob's answer carries its manifest or one body, never a bundle's", "[messages]") {
  pb::FetchResponse resp;
  resp.set_blob(sha256("wire"));
  CHECK_THAT(parse_fetch_response(resp.SerializeAsString()).error().message,
             Catch::Contains("carries nothing"));
  resp.set_blob_manifest("manifest bytes");
  REQUIRE(parse_fetch_response(resp.SerializeAsString()));
  pb::FetchResponse both = resp;
  both.mutable_chunk()->set_data("x");
  CHECK_FALSE(parse_fetch_response(both.SerializeAsString()));
  pb::FetchResponse chunk;
  chunk.set_blob(sha256("wire"));
  chunk.mutable_chunk()->set_data(std::string(100, 'z'));
  CHECK(parse_fetch_response(chunk.SerializeAsString()));
  chunk.set_manifest_digest(sha256("m"));
  CHECK_FALSE(parse_fetch_response(chunk.SerializeAsString()));
  pb::FetchResponse orphan;
  orphan.set_manifest_digest(sha256("m"));
  orphan.set_blob_manifest("manifest bytes");
  CHECK_FALSE(parse_fetch_response(orphan.SerializeAsString()));
}

TEST_CASE("an agent status with an unknown state is refused", "[messages]") {
  pb::AgentStatus st;
  st.set_agent_id("dev");
  st.set_state("healthy");
  CHECK(parse_agent_status(st.SerializeAsString()));
  st.set_state("pwned");
  CHECK_THAT(parse_agent_status(st.SerializeAsString()).error().message,
             Catch::Contains("unknown state"));
}

TEST_CASE("chunks added to a fetch request in order make as few ranges as they can") {
  pb::FetchRequest r;
  for (const uint32_t i : {3u, 4u, 5u, 9u, 10u, 0u}) add_chunk(r, i);
  REQUIRE(r.chunks_size() == 3);
  CHECK(r.chunks(0).first() == 3);
  CHECK(r.chunks(0).count() == 3);
  CHECK(r.chunks(1).first() == 9);
  CHECK(r.chunks(1).count() == 2);
  CHECK(r.chunks(2).first() == 0);
  CHECK(r.chunks(2).count() == 1);
}
