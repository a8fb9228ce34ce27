#include "tests/delta/loopback_hub.hpp"

#include <ctime>
#include <optional>

#include "bundles/trust.hpp"
#include "hub/catalog.hpp"
#include "hub/publish.hpp"
#include "hub/serve.hpp"
#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"

namespace sovdev::testing {

struct LoopbackHub::Impl {
  std::string dir;
  std::string trust_root;
  SecretKey publisher;
  LoopbackBus::Endpoint& endpoint;
  hub::ServeOptions options;
  std::optional<store::Database> db;
  std::optional<hub::Server> server;
  bool strip = false;
};

namespace {
int64_t unix_now() {
  return static_cast<int64_t>(std::time(nullptr));
}
}  // namespace

LoopbackHub::LoopbackHub(const std::string& dir, const std::string& trust_root,
                         const SecretKey& publisher, LoopbackBus::Endpoint& endpoint)
    : impl_(new Impl{dir, trust_root, publisher, endpoint, {}, std::nullopt, std::nullopt}) {
  impl_->options.keys = {publisher};
}

LoopbackHub::~LoopbackHub() = default;

Expected<std::string> LoopbackHub::publish(const std::string& bundle_file) {
  if (!impl_->db) {
    SOVDEV_ASSIGN(auto db, store::open_hub_database(impl_->dir + "/hub.db"));
    impl_->db.emplace(std::move(db));
  }
  SOVDEV_ASSIGN(auto trust, TrustPolicy::from_initial(impl_->trust_root));
  hub::PublishRequest req{bundle_file, {impl_->publisher}, trust, unix_now(), 24 * 3600};
  SOVDEV_ASSIGN(auto published, hub::publish_bundle(*impl_->db, req));
  return published.catalog.envelope;
}

Status LoopbackHub::start() {
  if (!impl_->db) return make_error(Errc::internal, "publish a bundle before serving");
  impl_->server.emplace(*impl_->db, impl_->endpoint, impl_->options, unix_now);
  return impl_->server->start();
}

Expected<bool> LoopbackHub::turn() {
  bool busy = false;
  while (auto e = impl_->endpoint.next({})) {
    if (impl_->strip && e->message.topic.find("/fetch/") != std::string::npos) {
      pb::FetchRequest req;
      if (req.ParseFromString(e->message.payload.str())) {
        req.clear_inline_delta_max();
        req.clear_delta_offer_only();
        e->message.payload = req.SerializeAsString();
      }
    }
    SOVDEV_TRY(impl_->server->handle(*e));
    busy = true;
  }
  impl_->server->poll();
  return busy;
}

void LoopbackHub::hold_delta_answers(uint32_t ms) {
  impl_->options.delta_hold_ms = ms;
}

void LoopbackHub::strip_one_answer_fields(bool strip) {
  impl_->strip = strip;
}

std::string LoopbackHub::catalog_topic(const std::string& channel) const {
  return hub::catalog_topic(impl_->options.prefix, channel);
}

const std::string& LoopbackHub::prefix() const {
  return impl_->options.prefix;
}

}  // namespace sovdev::testing
