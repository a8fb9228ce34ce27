// Connects with a retained last will "offline" on <topic>, publishes "online" there (retained),
// then idles until it is killed. Usage: mqtt_will_child URL USER PASSWORD CLIENT_ID TOPIC
#include <cstdio>

#include "platform/mqtt/client.hpp"

int main(int argc, char** argv) {
  using namespace sovdev::mqtt;
  using namespace std::chrono_literals;
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s URL USER PASSWORD CLIENT_ID TOPIC\n", argv[0]);
    return 2;
  }
  Options options;
  options.servers = {argv[1]};
  options.username = argv[2];
  options.password = argv[3];
  options.client_id = argv[4];
  Message will;
  will.topic = argv[5];
  will.payload = "offline";
  will.retained = true;
  options.will = will;
  auto client = make_paho_client(options);
  if (auto connected = client->connect(); !connected) {
    std::fprintf(stderr, "%s\n", connected.error().message.c_str());
    return 1;
  }
  Message online = will;
  online.payload = "online";
  if (auto sent = client->publish(online); !sent) {
    std::fprintf(stderr, "%s\n", sent.error().message.c_str());
    return 1;
  }
  for (;;) (void)client->next(1h);
}
