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
