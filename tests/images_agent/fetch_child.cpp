// One blob fetched by the real BlobFetch in a process of its own, for the test that kills it
// with SIGKILL mid-blob. Usage: images_agent_fetch_child STATE_DIR BROKER_URL AGENT_ID BLOB_FILE
// (BLOB_FILE: the serialized ImageBlob; agent.db in STATE_DIR holds its row). Exit 0: verified.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "agent/images/blob_fetch.hpp"
#include "platform/store/agent_cache.hpp"
#include "tests/images_agent/blob_loop.hpp"

int main(int argc, char** argv) {
  using namespace sovdev;
  if (argc != 5) return 2;
  const std::string state = argv[1];
  std::ifstream in(argv[4], std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  pb::ImageBlob blob;
  if (!blob.ParseFromString(bytes.str())) return 2;
  auto db = store::open_agent_database(state + "/agent.db");
  if (!db) return 3;
  mqtt::Options o;
  o.servers = {argv[2]};
  o.client_id = argv[3];
  o.username = "agent-a";
  o.password = "secret-a";
  auto client = mqtt::make_paho_client(o);
  if (!client->connect()) return 4;
  agent::FetchSettings settings;
  settings.agent_id = argv[3];
  settings.prefix = "sovdev/v1";
  settings.state_dir = state;
  settings.request_timeout_ms = 1000;
  settings.backoff_min_ms = 50;
  if (!client->subscribe(settings.prefix + "/agent/" + settings.agent_id + "/data", 1)) return 4;
  agent::FetchCounters counters;
  agent::images::BlobFetch fetch(*db, *client, settings, counters, blob, "child");
  const std::string error =
      testing::run_blob_fetch(fetch, *client, settings, std::chrono::seconds(120));
  if (!error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  return 0;
}
