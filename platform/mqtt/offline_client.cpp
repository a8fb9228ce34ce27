#include "platform/mqtt/offline_client.hpp"

namespace sovdev::mqtt {
namespace {

class OfflineClient final : public Client {
 public:
  Status connect() override { return offline(); }
  Status subscribe(const std::string&, int) override { return {}; }
  Status subscribe_as(const std::string&, int, const std::string&) override { return {}; }
  Status unsubscribe(const std::string&) override { return {}; }
  Status publish(const Message&) override { return offline(); }
  std::optional<Event> next(std::chrono::milliseconds) override { return std::nullopt; }
  Status disconnect() override { return {}; }
  Stats stats() const override { return {}; }

 private:
  static Status offline() { return make_error(Errc::unavailable, "offline: no broker in use"); }
};

}  // namespace

std::unique_ptr<Client> make_offline_client() {
  return std::make_unique<OfflineClient>();
}

}  // namespace sovdev::mqtt
