// The last step of a bundle fetch whose manifest names sealed secrets: the channel's epoch key,
// sealed to this agent, asked of the hub and kept in agent.db as received
// (docs/design-secrets.md). Anyone on the broker can publish on the data topic and anyone can
// seal to a public key, so an answer is kept only when it names the epoch asked for, opens with
// the agent's key and is the key the signed manifest names; anything else is ignored like a
// forged manifest. A refusal or silence ends the fetch done (the payload is whole): the apply
// then stops with the hub's reason, and asks again through the daemon's retry.
#include <spdlog/spdlog.h>

#include "agent/fetch.hpp"
#include "bundles/messages.hpp"
#include "common/text.hpp"
#include "platform/store/epoch_keys.hpp"

namespace sovdev::agent {
namespace {

std::string epoch_name(const pb::BundleManifest& m) {
  return "channel " + m.secrets_channel() + " epoch " + std::to_string(m.secrets_epoch());
}

}  // namespace

Status BundleFetch::payload_verified(int64_t now_ms) {
  stop_listening();
  phase_ = Phase::done;
  // No key on the agent: nothing sent could be opened, so nothing is asked (the apply says
  // to run keygen).
  if (manifest_.secrets_epoch() == 0 || settings_.agent_key == nullptr) return {};
  if (!valid_channel_name(manifest_.secrets_channel())) {
    without_epoch_key("the bundle's sealed secrets name a bad channel");
    return {};
  }
  // A store error here is not the payload's: it stays whole and verified (a storage error
  // returned from a fetch drops the payload), and the apply says what is missing.
  store::EpochKeyCache cache(db_);
  auto held = cache.find(manifest_.secrets_channel(), manifest_.secrets_epoch());
  if (!held) {
    without_epoch_key("no key for " + epoch_name(manifest_) + ": " + held.error().message);
    return {};
  }
  // A cached key that no longer opens (agent.key replaced, then `agents rotate` on the hub) is
  // asked for again; it stays cached until a key that opens replaces it.
  if (*held) {
    auto key = seal::open_sealed(**held, *settings_.agent_key);
    if (key && seal::epoch_key_id(manifest_.secrets_channel(), manifest_.secrets_epoch(), *key) ==
                   manifest_.secrets_key_id()) {
      return {};
    }
  }
  phase_ = Phase::epoch_key;
  epoch_requests_ = 0;
  attempts_ = 0;
  not_before_ = 0;
  first_epoch_request_ = request_id_ + 1;
  ignored_before_epoch_ = counters_.ignored_responses;
  return request_epoch_key(now_ms);
}

Status BundleFetch::request_epoch_key(int64_t now_ms) {
  waiting_since_ = now_ms;
  epoch_requests_++;
  pb::FetchRequest req;
  pb::EpochKeyRequest* key = req.mutable_epoch_key();
  key->set_channel(manifest_.secrets_channel());
  key->set_epoch(manifest_.secrets_epoch());
  return send(std::move(req), now_ms);
}

Status BundleFetch::on_epoch_key(const pb::FetchResponse& resp, int64_t now_ms) {
  const bool ours = resp.request_id() >= first_epoch_request_ && resp.request_id() <= request_id_;
  if (!resp.has_epoch_key()) {
    // Late chunks and manifests of this fetch are not news; only the hub's word on the key is.
    if (ours && resp.body_case() == pb::FetchResponse::kError) {
      // The hub's own words name the agent, the epoch and the command that grants it.
      without_epoch_key(escape_control(resp.error()), true);
    }
    return {};
  }
  const pb::SealedEpochKey& got = resp.epoch_key();
  if (got.channel() != manifest_.secrets_channel() || got.epoch() != manifest_.secrets_epoch()) {
    ignore("an epoch key of channel " + got.channel() + " epoch " + std::to_string(got.epoch()) +
           " sent for " + epoch_name(manifest_));
    return {};
  }
  if (settings_.agent_key == nullptr) {
    // Never asked without a key (payload_verified): an answer now is nobody's to keep.
    ignore("an epoch key sent to an agent that has no key to check it with");
    return {};
  }
  {
    auto key = seal::open_sealed(got.sealed(), *settings_.agent_key);
    if (!key) {
      ignore("the epoch key sent for " + epoch_name(manifest_) +
             " does not open with this agent's key");
      return {};
    }
    if (seal::epoch_key_id(got.channel(), got.epoch(), *key) != manifest_.secrets_key_id()) {
      ignore("the epoch key sent for " + epoch_name(manifest_) +
             " is another key than the bundle names");
      return {};
    }
  }
  store::EpochKeyCache cache(db_);
  if (auto kept = cache.put(got.channel(), got.epoch(), got.sealed(), now_ms / 1000); !kept) {
    without_epoch_key("no key for " + epoch_name(manifest_) + ": " + kept.error().message);
    return {};
  }
  spdlog::info("fetch {}@{}: got the epoch key of {}", goal_.stack, goal_.version,
               epoch_name(manifest_));
  phase_ = Phase::done;
  return {};
}

Status BundleFetch::epoch_key_timeout(int64_t now_ms) {
  if (now_ms - waiting_since_ < settings_.request_timeout_ms || now_ms < not_before_) return {};
  // Another run (an import, `sovdev-agent apply`) may have put the key there meanwhile.
  if (auto held =
          store::EpochKeyCache(db_).find(manifest_.secrets_channel(), manifest_.secrets_epoch());
      held && *held) {
    phase_ = Phase::done;
    return {};
  }
  if (epoch_requests_ >= settings_.epoch_key_attempts) {
    const std::string asked = " after " + std::to_string(epoch_requests_) + " requests";
    const bool forged = counters_.ignored_responses > ignored_before_epoch_;
    without_epoch_key("no key for " + epoch_name(manifest_) +
                      (forged ? ": no usable answer from the hub" + asked +
                                    " (last: " + counters_.last_ignored + ")"
                              : ": no answer from the hub" + asked));
    return {};
  }
  attempts_++;
  not_before_ = now_ms + backoff_ms();
  return request_epoch_key(now_ms);
}

void BundleFetch::without_epoch_key(std::string why, bool hub_refused) {
  phase_ = Phase::done;
  epoch_key_refused_ = hub_refused;
  epoch_key_refusal_ = std::move(why);
  spdlog::warn("fetch {}@{}: {}", goal_.stack, goal_.version, epoch_key_refusal_);
}

}  // namespace sovdev::agent
