// bench_secrets: issue #20's figures for secrets sealed to each site, on a channel of 1,000
// agents (docs/design-secrets.md), each beside a baseline of the same run:
//  1. the epoch change on the hub: FleetKeys::remove of one agent (a new epoch sealed to the
//     other 999 in one transaction on a hub.db on disk) and rotate of one agent's key, against
//     999 bare crypto_box_seal calls; and the bytes the change sends: each of the 999 agents
//     fetching its new grant once (FetchResponse with the sealed key, in an MQTT v5 PUBLISH),
//     beside what re-sending the bundle to each would cost. Bars: ≤ 5 s, ≤ 256 B per agent.
//  2. the bundle's size for the same stack (stacks/sovdev, env edge, every referenced value
//     set) built for a channel of 1 agent and of 1,000 agents. Bar: ≤ 64 B apart. The same
//     folder with the same values as literal Secrets (--allow-plaintext-secrets) is printed as
//     the reference of what sealing costs.
//  3. the agent's private memory (peak RssAnon, sampled every 2 ms) in `sovdev-agent apply`
//     through the dir target, the sealed bundle (its epoch key cached in agent.db as the hub
//     grants it) against the plaintext one. Bars: ≤ 12 MiB, ≤ 1 MiB above the plaintext run.
// Exit 0 when every bar holds, 1 when one is missed, 2 when the benchmark could not run.
#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_support.hpp"
#include "bundles/seal.hpp"
#include "hub/secrets/fleet_keys.hpp"
#include "hub/secrets/store_key.hpp"
#include "hub/secrets/values.hpp"
#include "platform/store/epoch_keys.hpp"
#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"

namespace sovdev::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kMiB = 1 << 20;
constexpr int kAgents = 1000;
constexpr int kRuns = 3;
const std::string kChannel = "edge";  // stacks/sovdev's env edge: its channel by default
const std::string kPrefix = "sovdev/v1";

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

template <class T>
T must(Expected<T> e, const std::string& what) {
  if (!e) throw std::runtime_error(what + ": " + e.error().message);
  return std::move(*e);
}

void must(Status s, const std::string& what) {
  if (!s) throw std::runtime_error(what + ": " + s.error().message);
}

void write_text(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("cannot write " + path);
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) throw std::runtime_error("cannot write " + path);
}

std::string base64(std::string_view bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// (name, key) -> value: every ${secret:NAME/KEY} stacks/sovdev's files name, whichever
// environment deploys them, each given 32 random characters (a letter first, so YAML never
// reads a literal copy as a number).
using Values = std::map<std::pair<std::string, std::string>, std::string>;
const std::regex kRef(R"(\$\{secret:([a-z0-9.-]+)/([-._a-zA-Z0-9]+)\})");

Values make_values(const std::string& base) {
  Values values;
  for (const auto& e : std::filesystem::recursive_directory_iterator(base)) {
    if (!e.is_regular_file()) continue;
    const std::string text = read_text(e.path().string());
    for (std::sregex_iterator m(text.begin(), text.end(), kRef), end; m != end; ++m) {
      std::string value = "s";
      for (int i = 0; i < 31; i++) value += "0123456789abcdef"[randombytes_uniform(16)];
      values.emplace(std::make_pair((*m)[1].str(), (*m)[2].str()), value);
    }
  }
  if (values.size() < 10) throw std::runtime_error(base + " names fewer than 10 secret values");
  return values;
}

// A copy of the stack folder with every reference replaced by its value: the same Secrets as
// literals.
std::string literal_copy(const std::string& stack, const std::string& to, const Values& values) {
  std::filesystem::remove_all(to);
  std::filesystem::create_directories(to);
  const std::string out = to + "/sovdev";  // the stack's name is its folder's
  std::filesystem::copy(stack, out, std::filesystem::copy_options::recursive);
  for (const auto& e : std::filesystem::recursive_directory_iterator(out + "/base")) {
    if (!e.is_regular_file()) continue;
    const std::string text = read_text(e.path().string());
    std::string result;
    size_t last = 0;
    for (std::sregex_iterator m(text.begin(), text.end(), kRef), end; m != end; ++m) {
      result.append(text, last, m->position() - last);
      result += values.at({(*m)[1].str(), (*m)[2].str()});
      last = m->position() + m->length();
    }
    if (last == 0) continue;
    result.append(text, last);
    write_text(e.path().string(), result);
  }
  return out;
}

// A hub.db on disk with its own store key and every value set for env edge.
class HubDb {
 public:
  HubDb(const std::string& dir, const std::string& name, const Values& values)
      : path(dir + "/" + name + ".db"), key_path(dir + "/" + name + ".store.key") {
    std::filesystem::remove(path);
    std::filesystem::remove(path + "-wal");
    std::filesystem::remove(path + "-shm");
    std::filesystem::remove(key_path);
    must(hub::secrets::create_store_key(key_path), "secret init");
    key = must(hub::secrets::load_store_key(key_path), "store key");
    db.emplace(must(store::open_hub_database(path), "hub.db"));
    hub::secrets::SecretValues set(*db, key);
    for (const auto& [ref, value] : values) {
      must(set.set("edge", ref.first, ref.second, seal::SecretBytes::copy_of(value), 1),
           "secret set");
    }
  }
  hub::secrets::FleetKeys fleet() { return hub::secrets::FleetKeys(*db, key); }

  std::string path, key_path;
  hub::secrets::StoreKey key;
  std::optional<store::Database> db;
};

struct Ctx {
  Paths paths;
  std::string dir;
  Keys keys;
  std::string stack;  // stacks/sovdev
};

// `sovdev-hub build` of a stack folder for env edge; returns the file's size.
uint64_t build(const Ctx& c, const std::string& stack, const std::string& name,
               std::vector<std::string> extra) {
  const std::string out = c.dir + "/" + name + ".sdb";
  const std::string log = c.dir + "/build-" + name + ".log";
  std::vector<std::string> argv = {c.paths.hub(),
                                   "build",
                                   stack,
                                   "--env",
                                   "edge",
                                   "--arch",
                                   "amd64,arm64",
                                   "--version",
                                   "1",
                                   "--key",
                                   c.keys.publisher_key,
                                   "--out",
                                   out,
                                   "--quiet"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (run_process(argv, log).exit_code != 0) {
    throw std::runtime_error("sovdev-hub build " + name + " failed: " + read_text(log));
  }
  // Its summary names what it sealed ("sealed N Secret(s) for channel C, epoch E").
  const std::string said = read_text(log);
  if (const size_t at = said.find("sealed "); at != std::string::npos) {
    note(name + ": " + said.substr(at, said.find('\n', at) - at));
  } else if (!extra.empty() && extra[0] == "--db") {
    throw std::runtime_error("sovdev-hub build " + name + " sealed nothing: " + said);
  }
  return file_size(out);
}

uint64_t varint_size(uint64_t n) {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

// An MQTT v5 PUBLISH at QoS 1 (fixed header, topic, packet id, properties, payload) and its
// 4-byte PUBACK. The hub's answer on the agent's data topic has no properties (the agent's
// request carries no correlation data, so the hub echoes none).
uint64_t mqtt_publish_bytes(const std::string& topic, uint64_t props, uint64_t payload) {
  const uint64_t rest = 2 + topic.size() + 2 + varint_size(props) + props + payload;
  return 1 + varint_size(rest) + rest + 4;
}

std::string seconds(double s) {
  return fixed(s, s < 0.1 ? 3 : 2) + " s";
}

// Part 1: the epoch change on the hub and what it sends; builds the 1,000-agent bundle first.
bool bench_epoch_change(const Ctx& c, const Values& values, uint64_t* bundle_1000) {
  std::printf("== epoch change on a channel of %d agents (hub.db on disk, one transaction)\n",
              kAgents);
  HubDb hub(c.dir, "hub-1000", values);
  auto fleet = hub.fleet();
  std::vector<seal::AgentKey> agents;
  auto start = Clock::now();
  for (int i = 0; i < kAgents; i++) {
    char id[32];
    std::snprintf(id, sizeof id, "edge-%04d", i);
    agents.push_back(seal::generate_agent_key(id));
    (void)must(
        fleet.add({id, kChannel, agents.back().public_key, {{"site", id}}, 1, std::nullopt}, 1),
        "agents add");
  }
  note(std::to_string(kAgents) + " agents enrolled (FleetKeys::add, one transaction each) in " +
       seconds(since(start)));
  *bundle_1000 = build(c, c.stack, "sealed-1000", {"--db", hub.path, "--store-key", hub.key_path});

  // Interleaved: the baseline's seals, a removal (the agent then added back, untimed, so the
  // channel has 1,000 again), a rotation with a new key.
  std::vector<double> base, removes, rotates;
  uint64_t removed_epoch = 0;
  std::string removed_id;
  for (int r = 0; r < kRuns; r++) {
    const seal::SecretBytes epoch_key = seal::random_key();
    start = Clock::now();
    uint64_t sealed_bytes = 0;
    for (int i = 0; i < kAgents; i++) {
      if (i == r) continue;
      sealed_bytes += seal::seal_to(agents[i].public_key, epoch_key).size();
    }
    base.push_back(since(start));
    if (sealed_bytes != (kAgents - 1) * (seal::kBoxOverhead + seal::kKeySize)) {
      throw std::runtime_error("unexpected sealed box size");
    }

    start = Clock::now();
    const uint64_t epoch = must(fleet.remove(agents[r].name, 100 + r), "agents remove");
    removes.push_back(since(start));
    if (r == 0) removed_epoch = epoch, removed_id = agents[r].name;
    (void)must(
        fleet.add({agents[r].name, kChannel, agents[r].public_key, {}, 200 + r, std::nullopt},
                  200 + r),
        "agents add back");

    const int who = kRuns + r;
    agents[who] = seal::generate_agent_key(agents[who].name);
    start = Clock::now();
    (void)must(fleet.rotate(agents[who].name, agents[who].public_key, 300 + r), "agents rotate");
    rotates.push_back(since(start));
  }
  const double b = median(base), rm = median(removes), rt = median(rotates);
  note("999 crypto_box_seal of a 32-byte key (baseline): " + seconds(b) + " (median of " +
       std::to_string(kRuns) + ")");
  note("remove: " + seconds(rm) + " (" + fixed(rm / b, 1) + "x the seals), rotate: " + seconds(rt) +
       " (" + fixed(rt / b, 1) + "x; it seals to all 1,000)");

  // The bytes: each of the 999 fetches its grant of the removal's epoch once.
  uint64_t answers = 0, wire = 0, counted = 0, asked = 0;
  std::string topic_example;
  for (const auto& a : agents) {
    if (a.name == removed_id) continue;
    // Rotated agents' grants of that epoch are for their earlier keys: still one each.
    const auto grant = must(fleet.grant(kChannel, removed_epoch, a.name), "grant");
    if (!grant) throw std::runtime_error("no grant of the new epoch for " + a.name);
    pb::FetchResponse resp;
    resp.set_schema(1);
    resp.set_request_id(1000);  // a 2-byte varint (ids from 128 up): the larger case
    resp.set_manifest_digest(std::string(32, '\xab'));
    pb::SealedEpochKey* key = resp.mutable_epoch_key();
    key->set_channel(kChannel);
    key->set_epoch(removed_epoch);
    key->set_sealed(*grant);
    const uint64_t size = resp.SerializeAsString().size();
    const std::string topic = kPrefix + "/agent/" + a.name + "/data";
    topic_example = topic;
    // The agent's request (not the hub's to send, so outside the bar): a PUBLISH QoS 1 to
    // <prefix>/fetch/<id> with its data topic as the MQTT v5 response topic, and the PUBACK.
    pb::FetchRequest req;
    req.set_schema(1);
    req.set_agent_id(a.name);
    req.set_request_id(1000);
    req.set_manifest_digest(std::string(32, '\xab'));
    req.mutable_epoch_key()->set_channel(kChannel);
    req.mutable_epoch_key()->set_epoch(removed_epoch);
    const uint64_t props = 3 + topic.size();
    const std::string fetch_topic = kPrefix + "/fetch/" + a.name;
    asked += mqtt_publish_bytes(fetch_topic, props, req.SerializeAsString().size());
    answers += size;
    wire += mqtt_publish_bytes(topic, 0, size);
    counted++;
  }
  const uint64_t bundle = *bundle_1000;
  note("grants of epoch " + std::to_string(removed_epoch) + " sent: " + std::to_string(counted) +
       " answers, " + std::to_string(answers) + " B of FetchResponse, " + std::to_string(wire) +
       " B with MQTT (PUBLISH QoS 1 to " + topic_example +
       " and its PUBACK; the hub's own link carries the same PUBLISH once more)");
  note("the agents' requests for them: " + std::to_string(asked / counted) +
       " B each with MQTT (not the hub's to send)");
  note("re-sending the bundle instead: " + std::to_string(bundle) + " B per agent, " +
       mib(bundle * counted) + " for " + std::to_string(counted));
  // The operator's command itself, once (after the grants above were counted): process start,
  // store key, hub.db, the same change.
  const std::string cli_log = c.dir + "/agents-remove.log";
  const auto cli = run_process({c.paths.hub(), "agents", "remove", agents[kAgents - 1].name, "--db",
                                hub.path, "--store-key", hub.key_path},
                               cli_log);
  if (cli.exit_code != 0) {
    throw std::runtime_error("sovdev-hub agents remove failed: " + read_text(cli_log));
  }
  note("`sovdev-hub agents remove` of another agent, as a command (process start to exit): " +
       seconds(cli.seconds));
  const double per_agent = static_cast<double>(wire) / static_cast<double>(counted);
  bool ok = true;
  ok &= verdict("epoch change, remove 1 of 1,000: " + seconds(rm) + " (999 seals " + seconds(b) +
                    ", " + fixed(rm / b, 1) + "x) bar <= 5 s",
                rm <= 5.0);
  ok &= verdict("epoch change, rotate 1 of 1,000: " + seconds(rt) + " (999 seals " + seconds(b) +
                    ", " + fixed(rt / b, 1) + "x) bar <= 5 s",
                rt <= 5.0);
  ok &= verdict("epoch change sent per agent: " + fixed(per_agent, 0) + " B (total " +
                    std::to_string(wire) + " B; the bundle " + std::to_string(bundle) +
                    " B each) bar <= 256 B",
                per_agent <= 256);
  return ok;
}

// Imports `bundle` into a fresh state holding the agent's key, caches `grant` when given, and
// applies it through the dir target, sampled.
ProcessStats apply_once(const Ctx& c, const std::string& name, const std::string& bundle,
                        const std::string& key_dir, const std::optional<std::string>& grant,
                        uint64_t epoch, std::string* applied_dir) {
  const std::string state = c.dir + "/state-" + name;
  const std::string applied = c.dir + "/applied-" + name;
  std::filesystem::remove_all(state);
  std::filesystem::remove_all(applied);
  std::filesystem::create_directories(state);
  std::filesystem::create_directories(applied);
  for (const char* file : {"/agent.key", "/agent.pub"}) {
    std::filesystem::copy_file(key_dir + file, state + file);
  }
  ::chmod((state + "/agent.key").c_str(), 0600);
  const std::string config = c.dir + "/agent-" + name + ".toml";
  write_text(config, "agent_id = \"site-1\"\nchannels = [\"edge\"]\nstate_dir = \"" + state +
                         "\"\ntrust_root = \"" + c.keys.trust_root +
                         "\"\n[broker]\nurls = [\"tcp://127.0.0.1:1\"]\n[apply]\ntarget = "
                         "\"dir\"\ndir = \"" +
                         applied + "\"\n");
  const std::string import_log = c.dir + "/import-" + name + ".log";
  if (run_process({c.paths.agent(), "import", "--state", state, "--trust", c.keys.trust_root,
                   "--channel", kChannel, bundle},
                  import_log)
          .exit_code != 0) {
    throw std::runtime_error("import failed: " + read_text(import_log));
  }
  if (grant) {
    // agent.db as the import made and migrated it.
    store::OpenOptions options;
    options.create = false;
    auto db = must(store::Database::open(state + "/agent.db", options), "agent.db");
    must(store::EpochKeyCache(db).put(kChannel, epoch, *grant, 1), "cache the epoch key");
  }
  const std::string log = c.dir + "/apply-" + name + ".log";
  auto stats = run_process({c.paths.agent(), "apply", "--config", config}, log, 2);
  if (stats.exit_code != 0) {
    throw std::runtime_error("sovdev-agent apply (" + name + ") failed (exit " +
                             std::to_string(stats.exit_code) + "): " + read_text(log));
  }
  *applied_dir = applied;
  return stats;
}

// Whether some file under `dir` holds `text`.
bool found_in(const std::string& dir, const std::string& text) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && read_text(e.path().string()).find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// Parts 2 and 3: the bundle's size for 1 and 1,000 agents, and the agent applying it.
bool bench_bundle_and_agent(const Ctx& c, const Values& values, uint64_t size_1000) {
  std::printf(
      "== bundle size against the channel's agent count (stacks/sovdev, env edge, %zu "
      "values)\n",
      values.size());
  // The agent of the 1-agent channel has a real key (sovdev-agent keygen), enrolled on the hub.
  const std::string key_dir = c.dir + "/agent-key";
  std::filesystem::remove_all(key_dir);
  const std::string keygen_log = c.dir + "/keygen.log";
  if (run_process({c.paths.agent(), "keygen", "--state", key_dir}, keygen_log).exit_code != 0) {
    throw std::runtime_error("sovdev-agent keygen failed: " + read_text(keygen_log));
  }
  const seal::AgentKey agent =
      must(seal::parse_agent_public(read_text(key_dir + "/agent.pub")), "agent.pub");
  HubDb hub(c.dir, "hub-1", values);
  auto fleet = hub.fleet();
  const uint64_t epoch =
      must(fleet.add({"site-1", kChannel, agent.public_key, {}, 1, std::nullopt}, 1), "add");
  const uint64_t size_1 =
      build(c, c.stack, "sealed-1", {"--db", hub.path, "--store-key", hub.key_path});
  const auto grant = must(fleet.grant(kChannel, epoch, "site-1"), "grant");
  if (!grant) throw std::runtime_error("site-1 has no grant");
  const std::string literal = literal_copy(c.stack, c.dir + "/literal", values);
  const uint64_t size_plain = build(c, literal, "literal", {"--allow-plaintext-secrets"});

  const uint64_t apart = size_1 > size_1000 ? size_1 - size_1000 : size_1000 - size_1;
  note("sealed for 1 agent " + std::to_string(size_1) + " B, for 1,000 agents " +
       std::to_string(size_1000) + " B; the same values as literal Secrets " +
       std::to_string(size_plain) + " B (sealing costs " +
       std::to_string(static_cast<int64_t>(size_1) - static_cast<int64_t>(size_plain)) + " B)");
  bool ok = verdict("bundle size, 1 vs 1,000 agents: " + std::to_string(size_1) + " B vs " +
                        std::to_string(size_1000) + " B, " + std::to_string(apart) +
                        " B apart (literal " + std::to_string(size_plain) + " B) bar <= 64 B",
                    apart <= 64);

  std::printf("== agent private memory applying sealed vs literal Secrets (dir target)\n");
  uint64_t sealed_peak = 0, plain_peak = 0, sealed_rss = 0, plain_rss = 0;
  unsigned sealed_samples = 0, plain_samples = 0;
  std::string applied;
  // The redis password as the dir target writes it: base64 in the opened Secret's data, as it
  // is in the literal Secret's stringData. Both runs must have written it: a refused or empty
  // apply would show a low peak.
  const std::string& password = values.at({"redis-credentials", "password"});
  const std::string probe = base64(password);
  for (int r = 0; r < kRuns; r++) {
    const auto s =
        apply_once(c, "sealed", c.dir + "/sealed-1.sdb", key_dir, grant, epoch, &applied);
    if (!found_in(applied, probe)) {
      throw std::runtime_error("the sealed apply wrote no opened value under " + applied);
    }
    sealed_peak = std::max(sealed_peak, s.peak_anon);
    sealed_rss = std::max(sealed_rss, s.peak_rss);
    sealed_samples += s.samples;
    const auto p =
        apply_once(c, "literal", c.dir + "/literal.sdb", key_dir, std::nullopt, 0, &applied);
    if (!found_in(applied, "\"" + password + "\"")) {
      throw std::runtime_error("the literal apply wrote no value under " + applied);
    }
    plain_peak = std::max(plain_peak, p.peak_anon);
    plain_rss = std::max(plain_rss, p.peak_rss);
    plain_samples += p.samples;
    if (r == 0) {
      note("one apply: sealed " + fixed(s.seconds, 2) + " s, literal " + fixed(p.seconds, 2) +
           " s");
    }
  }
  note("peak private (highest of " + std::to_string(kRuns) + "): sealed " + mib(sealed_peak) +
       ", literal " + mib(plain_peak) + "; total sealed " + mib(sealed_rss) + ", literal " +
       mib(plain_rss) + " (" + std::to_string(sealed_samples) + " and " +
       std::to_string(plain_samples) + " samples)");
  const uint64_t above = sealed_peak > plain_peak ? sealed_peak - plain_peak : 0;
  ok &= verdict("private during sealed apply: " + mib(sealed_peak) + " (literal " +
                    mib(plain_peak) + ") bar <= 12 MiB",
                sealed_peak <= 12 * kMiB);
  ok &= verdict("private sealed above literal: " + mib(above) + " bar <= 1 MiB", above <= 1 * kMiB);
  return ok;
}

int run(int argc, char** argv) {
  Paths paths{SOVDEV_BENCH_BUILD_DIR, SOVDEV_BENCH_SHARED_DIR};
  std::string data;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--build") {
      paths.build_dir = argv[i + 1];
    } else if (flag == "--data") {
      data = argv[i + 1];
    } else {
      std::fprintf(stderr, "usage: bench_secrets [--build DIR] [--data DIR]\n");
      return 2;
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "usage: bench_secrets [--build DIR] [--data DIR]\n");
    return 2;
  }
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to start");
  TempDir temp;
  Ctx c{paths, data.empty() ? temp.path() : data + "/secrets", {}, {}};
  std::filesystem::create_directories(c.dir);
  c.keys = make_keys(paths, c.dir);
  c.stack = paths.source_dir() + "/stacks/sovdev";
  const Values values = make_values(c.stack + "/base");
  const auto start = Clock::now();
  uint64_t size_1000 = 0;
  bool ok = bench_epoch_change(c, values, &size_1000);
  ok &= bench_bundle_and_agent(c, values, size_1000);
  note("bench_secrets took " + fixed(since(start), 1) + " s");
  if (!data.empty() && std::getenv("SOVDEV_BENCH_KEEP") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(c.dir, ec);
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace sovdev::bench

int main(int argc, char** argv) {
  try {
    return sovdev::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_secrets: %s\n", e.what());
    return 2;
  }
}
