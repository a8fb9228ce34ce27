#include "tests/images_agent/blob_loop.hpp"

#include "bundles/messages.hpp"

namespace sovdev::testing {

std::string run_blob_fetch(agent::images::BlobFetch& fetch, mqtt::Client& client,
                           const agent::FetchSettings& settings, std::chrono::milliseconds limit) {
  using Phase = agent::images::BlobFetch::Phase;
  const auto start = std::chrono::steady_clock::now();
  auto now_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start)
        .count();
  };
  const std::string data = settings.prefix + "/agent/" + settings.agent_id + "/data";
  if (auto ok = fetch.start(now_ms()); !ok) return ok.error().message;
  auto step = [&](Status s) -> bool {
    if (s) return true;
    if (s.error().code == Errc::io || s.error().code == Errc::store) {
      return static_cast<bool>(fetch.storage_failed(s.error()));
    }
    return false;
  };
  while (fetch.phase() != Phase::done && fetch.phase() != Phase::failed) {
    if (now_ms() > limit.count()) return "the fetch did not end in time";
    auto event = client.next(std::chrono::milliseconds(20));
    while (event) {
      if (event->kind == mqtt::Event::Kind::connected) {
        if (!step(fetch.on_reconnect(now_ms()))) return "reconnect: " + fetch.error();
      } else if (event->kind == mqtt::Event::Kind::message && event->message.topic == data) {
        auto resp = parse_fetch_response(event->message.payload);
        if (resp && resp->blob() == fetch.blob().wire_digest()) {
          if (auto ok = fetch.on_response(*resp, now_ms()); !step(ok)) {
            return ok ? fetch.error() : ok.error().message;
          }
        }
      }
      event = client.next(std::chrono::milliseconds(0));
    }
    if (auto ok = fetch.flush(now_ms()); !step(ok)) return ok ? fetch.error() : ok.error().message;
    if (auto ok = fetch.on_tick(now_ms()); !step(ok))
      return ok ? fetch.error() : ok.error().message;
  }
  return fetch.phase() == Phase::done ? "" : fetch.error();
}

}  // namespace sovdev::testing
