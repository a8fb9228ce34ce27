// The sync protocol's MQTT messages: anyone who can publish on the broker can send these.
// Byte 0 picks the parser (b % 3): 0 fetch request (hub side), 1 fetch response (agent side),
// 2 agent status (hub side); the rest is the message. A message accepted once must be accepted
// again after re-encoding, and a manifest carried in a response is verified as the agent does;
// a sealed epoch key in a response is opened with the fixture's agent key, as the agent does.
#include <cstdint>
#include <string>
#include <string_view>

#include "bundles/hash.hpp"
#include "bundles/manifest_rules.hpp"
#include "bundles/messages.hpp"
#include "tests/fuzz/fixtures.hpp"
#include "tests/fuzz/wire_mutator.hpp"

using namespace sovdev;

namespace {

template <class Message, class Parse>
void reparse(const Message& m, Parse parse, std::string_view what) {
  const std::string again = m.SerializeAsString();
  auto second = parse(again);
  fuzz::expect(second.has_value(), std::string(what) + " accepted, then refused re-encoded: " +
                                       (second ? "" : second.error().message));
}

void fetch_request(std::string_view bytes) {
  auto req = parse_fetch_request(bytes);
  if (!req) return;
  fuzz::expect(valid_agent_id(req->agent_id()), "fetch request with a bad agent id");
  fuzz::expect(req->manifest_digest().size() == kDigestSize, "fetch request digest size");
  uint64_t chunks = 0;
  for (const auto& r : req->chunks()) chunks += r.count();
  fuzz::expect(chunks <= kMaxChunksPerRequest, "fetch request over the chunk limit");
  if (req->has_epoch_key()) {
    fuzz::expect(valid_channel_name(req->epoch_key().channel()) && req->epoch_key().epoch() > 0,
                 "epoch key request for a bad channel or epoch 0");
    fuzz::expect(chunks == 0 && !req->want_manifest(), "epoch key request that asks for more");
  }
  reparse(*req, parse_fetch_request, "fetch request");
}

void fetch_response(std::string_view bytes) {
  auto resp = parse_fetch_response(bytes);
  if (!resp) return;
  fuzz::expect(resp->manifest_digest().size() == kDigestSize, "fetch response digest size");
  if (resp->has_manifest()) {
    std::string digest;
    auto manifest = fuzz::trust_v1().verify_manifest(resp->manifest(), &digest);
    if (manifest) {
      (void)describe(*manifest);
      (void)(digest == resp->manifest_digest());  // the agent's check that it got what it asked
    }
  }
  if (resp->has_chunk()) {
    fuzz::expect(!resp->chunk().data().empty() && resp->chunk().data().size() <= kMaxChunkSize,
                 "fetch response chunk size out of range");
  }
  if (resp->has_epoch_key()) {
    const auto& key = resp->epoch_key();
    fuzz::expect(valid_channel_name(key.channel()) && key.epoch() > 0 &&
                     key.sealed().size() == kSealedEpochKeyBytes,
                 "sealed epoch key with a bad channel, epoch 0 or the wrong size");
    // What the agent does with it before keeping it.
    if (auto opened = seal::open_sealed(key.sealed(), fuzz::agent_key())) {
      (void)seal::epoch_key_id(key.channel(), key.epoch(), *opened);
    }
  } else {
    fuzz::expect(resp->body_case() != pb::FetchResponse::BODY_NOT_SET, "response with nothing");
  }
  reparse(*resp, parse_fetch_response, "fetch response");
}

void agent_status(std::string_view bytes) {
  auto st = parse_agent_status(bytes);
  if (!st) return;
  fuzz::expect(valid_agent_id(st->agent_id()), "agent status with a bad agent id");
  fuzz::expect(st->progress_permille() <= 1000, "agent status progress over 100 %");
  reparse(*st, parse_agent_status, "agent status");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Params p(data, size);
  const uint8_t which = p.u8() % 3;
  const std::string_view message = p.rest();
  switch (which) {
    case 0: fetch_request(message); break;
    case 1: fetch_response(message); break;
    default: agent_status(message); break;
  }
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned seed) {
  return fuzz::mutate_message(data, size, max_size, seed, 1);
}
