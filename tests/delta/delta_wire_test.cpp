// What a delta upgrade puts on the agent's link: the real hub and agent code over an in-process
// broker that counts MQTT packets. A small delta comes whole in the answer to the manifest
// request, its signed delta manifest without what the agent already knows; older agents get
// the older exchange.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "bundles/bundle_file.hpp"
#include "bundles/delta.hpp"
#include "bundles/hash.hpp"
#include "bundles/messages.hpp"
#include "tests/delta/fixtures.hpp"
#include "tests/delta/loopback_fetch.hpp"

using namespace sovdev;
using namespace sovdev::delta_test;

namespace {

// 120 ConfigMaps of distinct text, the kind of stack an upgrade touches in a few places.
std::vector<pb::ResourceRecord> stack(int changed) {
  std::vector<pb::ResourceRecord> out;
  for (int i = 0; i < 120; i++) {
    pb::ResourceRecord r;
    r.set_api_version("v1");
    r.set_kind("ConfigMap");
    r.set_namespace_("edge");
    r.set_name("settings-" + std::to_string(i));
    std::string data;
    for (int line = 0; line < 40; line++) {
      data += "key" + std::to_string(line) + "=" +
              std::to_string((i * 7919 + line * 104729) % 1000003) + "\\n";
    }
    if (i % 40 == 0 && changed > 0) data += "release=" + std::to_string(changed) + "\\n";
    r.set_json(R"({"apiVersion":"v1","data":{"settings":")" + data +
               R"("},"kind":"ConfigMap","metadata":{"name":")" + r.name() +
               R"(","namespace":"edge"}})");
    r.set_source("settings.yaml:" + std::to_string(i * 45 + 1));
    out.push_back(std::move(r));
  }
  return out;
}

std::string bundle_file(const Bundle& b) {
  return encode_bundle_header(static_cast<uint32_t>(b.signed_manifest.envelope.size())) +
         b.signed_manifest.envelope + b.payload;
}

struct Upgrade {
  store::test::TempDir tmp;
  Trust trust;
  Bundle v1 = make_bundle(stack(0), 1, trust.publisher());
  Bundle v2 = make_bundle(stack(1), 2, trust.publisher());
  testing::LoopbackUpgrade u;

  Upgrade() {
    const std::string dir = tmp.path().string();
    write_bytes(dir + "/v1.sdb", bundle_file(v1));
    write_bytes(dir + "/v2.sdb", bundle_file(v2));
    {
      auto db = must(store::open_agent_database(dir + "/agent.db"));
      cache_signed(db, v1);
    }
    u.dir = dir + "/run";
    u.trust_root = trust.policy.envelope();
    u.publisher = trust.publisher();
    u.base_file = dir + "/v1.sdb";
    u.target_file = dir + "/v2.sdb";
    u.agent_db = dir + "/agent.db";
    u.base_digest = v1.signed_manifest.digest;
    u.base_version = 1;
    u.stack = "kp";
    u.channel = "edge";
  }
};

struct Counted {
  int requests = 0;  // PUBLISH agent → hub
  int messages = 0;  // PUBLISH hub → agent
  int subscribes = 0;
};

Counted count(const testing::LoopbackResult& r) {
  Counted c;
  for (const auto& p : r.packets) {
    if (p.what.rfind("PUBLISH", 0) == 0) (p.in ? c.messages : c.requests)++;
    if (!p.in && p.what.rfind("SUBSCRIBE", 0) == 0) c.subscribes++;
  }
  return c;
}

}  // namespace

TEST_CASE("a small delta upgrade costs the agent one request and one answer beside the catalog") {
  Upgrade up;
  up.u.agents_before = 1;  // the delta is made already, as for every agent but the first
  const auto r = testing::fetch_upgrade_over_loopback(up.u);
  REQUIRE(r.error.empty());
  CHECK(r.used_delta);
  const Counted c = count(r);
  CHECK(c.requests == 1);
  CHECK(c.messages == 2);    // the catalog, then manifest + delta manifest + delta
  CHECK(c.subscribes == 0);  // no blob topic for a delta that came whole
  WARN("wire bytes of the upgrade on the agent's link: " << r.bytes);
}

TEST_CASE("the first agent to ask gets the delta in one answer when the hub makes it quickly") {
  Upgrade up;
  up.u.agents_before = 0;
  const auto first = testing::fetch_upgrade_over_loopback(up.u);
  REQUIRE(first.error.empty());
  CHECK(first.used_delta);
  up.u.agents_before = 1;
  const auto next = testing::fetch_upgrade_over_loopback(up.u);
  REQUIRE(next.error.empty());
  // The hub held its answer while it made the delta: nothing more than any later agent pays.
  CHECK(count(first).requests == 1);
  CHECK(first.bytes == next.bytes);
}

TEST_CASE("an agent told to ask again for its delta is not sent the manifest twice") {
  Upgrade up;
  up.u.agents_before = 0;
  up.u.delta_hold_ms = 0;  // answered at once: the delta is still being made
  const auto first = testing::fetch_upgrade_over_loopback(up.u);
  REQUIRE(first.error.empty());
  CHECK(first.used_delta);
  up.u.agents_before = 1;
  const auto next = testing::fetch_upgrade_over_loopback(up.u);
  REQUIRE(next.error.empty());
  const int requests = count(first).requests;
  CHECK(requests >= 2);
  // Each further request and its short answer; the signed manifest only once.
  CHECK(first.bytes > next.bytes);
  CHECK(first.bytes - next.bytes < static_cast<uint64_t>(requests - 1) * 250 + 64);
}

TEST_CASE(
    "an agent that asks the older way gets the older exchange and still rebuilds from the delta") {
  Upgrade up;
  up.u.agents_before = 1;
  up.u.old_agent = true;
  const auto r = testing::fetch_upgrade_over_loopback(up.u);
  REQUIRE(r.error.empty());
  CHECK(r.used_delta);
  const Counted c = count(r);
  CHECK(c.requests == 2);  // the manifest, then the delta's chunks
  CHECK(c.messages >= 4);  // catalog, manifest, delta manifest, chunk
}

TEST_CASE(
    "an offered delta verifies only for the pair the agent named and the bytes sent with it") {
  Trust trust;
  const std::string target = sha256("target"), base = sha256("base"), other = sha256("other");
  Delta delta;
  delta.bytes = std::string(300, 'd');
  delta.window_log = 20;
  const auto inline_form = make_delta_manifest(target, base, delta, 0);
  REQUIRE(is_inline_delta(inline_form));
  pb::Signed sent;
  REQUIRE(sent.ParseFromString(sign_delta_offer(inline_form, {trust.publisher()})));
  pb::DeltaManifest body;
  REQUIRE(body.ParseFromString(sent.body()));
  // What the agent knows or derives is not sent.
  CHECK(body.manifest_digest().empty());
  CHECK(body.base_digest().empty());
  CHECK(body.delta_sha256().empty());
  CHECK(body.delta_size() == 0);
  CHECK(sent.type().empty());
  REQUIRE(sent.signatures_size() == 1);
  CHECK(sent.signatures(0).key_id().empty());

  auto good = verify_offered_delta(trust.policy, sent, target, base, delta.bytes);
  REQUIRE(good);
  CHECK(good->manifest_digest() == target);
  CHECK(good->base_digest() == base);
  CHECK(good->delta_sha256() == sha256(delta.bytes));
  CHECK_FALSE(verify_offered_delta(trust.policy, sent, target, other, delta.bytes));
  CHECK_FALSE(verify_offered_delta(trust.policy, sent, other, base, delta.bytes));
  std::string altered = delta.bytes;
  altered[200] ^= 1;
  CHECK_FALSE(verify_offered_delta(trust.policy, sent, target, base, altered));
  CHECK_FALSE(verify_offered_delta(trust.policy, sent, target, base, delta.bytes + "x"));
  CHECK_FALSE(verify_offered_delta(trust.policy, sent, target, base, ""));

  // The chunked form, digests in the body, is held to the same pair.
  pb::Signed chunked;
  REQUIRE(chunked.ParseFromString(
      sign_delta_manifest(make_delta_manifest(target, base, delta), {trust.publisher()})));
  CHECK(verify_offered_delta(trust.policy, chunked, target, base));
  CHECK_FALSE(verify_offered_delta(trust.policy, chunked, target, other));

  // Signed by a key outside the publisher role: refused whatever the pair.
  Trust stranger;
  pb::Signed forged;
  REQUIRE(forged.ParseFromString(sign_delta_offer(inline_form, {stranger.publisher()})));
  CHECK_FALSE(verify_offered_delta(trust.policy, forged, target, base, delta.bytes));
}

TEST_CASE("an inline delta is checked whole against its signed hash and size") {
  Delta delta;
  delta.bytes = std::string(300, 'd');
  delta.window_log = 20;
  const auto m = make_delta_manifest(sha256("t"), sha256("b"), delta, 0);
  CHECK(verify_inline_delta(m, delta.bytes));
  std::string flipped = delta.bytes;
  flipped[200] ^= 1;
  auto altered = verify_inline_delta(m, flipped);
  REQUIRE_FALSE(altered);
  CHECK(altered.error().code == Errc::signature);
  CHECK_FALSE(verify_inline_delta(m, delta.bytes.substr(1)));
  CHECK_FALSE(
      verify_inline_delta(make_delta_manifest(sha256("t"), sha256("b"), delta), delta.bytes));
}

TEST_CASE("an inline delta manifest over the inline cap is malformed") {
  Delta delta;
  delta.bytes = std::string(kMaxInlineDelta + 1, 'd');
  delta.window_log = 20;
  CHECK_FALSE(check_delta_shape(make_delta_manifest(sha256("t"), sha256("b"), delta, 0)));
  delta.bytes.resize(kMaxInlineDelta);
  CHECK(check_delta_shape(make_delta_manifest(sha256("t"), sha256("b"), delta, 0)));
}

TEST_CASE("a fetch response carrying an inline delta over the cap is refused") {
  pb::FetchResponse r;
  r.set_schema(1);
  r.set_manifest_digest(sha256("t"));
  r.set_error("x");
  r.set_delta_data(std::string(kMaxInlineDelta + 1, 'd'));
  CHECK_FALSE(parse_fetch_response(r.SerializeAsString()));
  r.set_delta_data(std::string(16, 'd'));
  CHECK(parse_fetch_response(r.SerializeAsString()));
  CHECK(answers_delta(r) == false);
  r.set_delta_retry_ms(100);
  CHECK(answers_delta(r));
}
