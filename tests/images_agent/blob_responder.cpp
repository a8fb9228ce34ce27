#include "tests/images_agent/blob_responder.hpp"

#include <unistd.h>

#include <chrono>
#include <random>
#include <stdexcept>

#include "bundles/blob_wire.hpp"
#include "bundles/hash.hpp"
#include "platform/mqtt/client.hpp"
#include "tests/support/process.hpp"

namespace sovdev::testing {

ServedBlob served_with(const std::string& data, uint32_t chunk_size, const std::string& media_type,
                       const std::string& arch) {
  ServedBlob out;
  out.data = data;
  blobwire::BlobEncoder::Options options;
  options.level = 1;
  options.chunk_size = chunk_size;
  auto encoder = blobwire::BlobEncoder::create(options, [&](uint32_t, std::string_view chunk) {
    out.chunks.emplace_back(chunk);
    return Status{};
  });
  if (!encoder) throw std::runtime_error(encoder.error().message);
  if (!encoder->write(data)) throw std::runtime_error("encode");
  auto manifest = encoder->finish();
  if (!manifest) throw std::runtime_error(manifest.error().message);
  out.manifest = manifest->SerializeAsString();
  out.listing.set_digest(manifest->digest());
  out.listing.set_size(manifest->size());
  out.listing.set_media_type(media_type);
  out.listing.set_arch(arch);
  out.listing.set_wire_digest(sha256(out.manifest));
  out.listing.set_wire_size(manifest->wire_size());
  return out;
}

ServedBlob make_served_blob(size_t size, uint32_t seed, uint32_t chunk_size,
                            const std::string& media_type) {
  std::string data(size, '\0');
  std::mt19937 rng(seed);
  for (auto& c : data) c = static_cast<char>(rng() & 0xff);
  return served_with(data, chunk_size, media_type, "amd64");
}

ServedBlob served_blob_of(const std::string& data, const std::string& media_type,
                          const std::string& arch) {
  return served_with(data, 4096, media_type, arch);
}

BlobResponder::BlobResponder(const Broker& broker, std::string prefix)
    : broker_(broker), prefix_(std::move(prefix)) {}

BlobResponder::~BlobResponder() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void BlobResponder::serve(const ServedBlob& blob) {
  by_wire_[blob.listing.wire_digest()] = &blob;
}

void BlobResponder::start() {
  thread_ = std::thread([this] { run(); });
  if (!wait_until([&] { return ready_.load(); }, std::chrono::seconds(10))) {
    throw std::runtime_error("the blob responder did not connect");
  }
}

void BlobResponder::run() {
  mqtt::Options o;
  o.servers = {broker_.url()};
  o.client_id = "blob-responder-" + std::to_string(::getpid());
  o.username = "sovdev-hub";
  o.password = "hub-secret";
  o.max_pending_publishes = 4096;
  o.queue_capacity = 1024;
  auto client = mqtt::make_paho_client(o);
  if (!client->connect() || !client->subscribe(prefix_ + "/fetch/+", 1)) return;
  ready_ = true;
  bool wrong_sent = false;
  std::set<uint32_t> tampered, foreign_sent;
  while (!stop_) {
    auto event = client->next(std::chrono::milliseconds(20));
    if (!event || event->kind != mqtt::Event::Kind::message) continue;
    pb::FetchRequest req;
    if (!req.ParseFromString(event->message.payload.str())) continue;
    requests_++;
    if (silent) continue;
    const auto found = by_wire_.find(req.blob());
    auto answer = [&](const pb::FetchResponse& resp) {
      mqtt::Message m;
      m.topic = event->message.response_topic;
      m.payload = resp.SerializeAsString();
      bytes_sent_ += m.payload.size();
      (void)client->publish(m);
    };
    pb::FetchResponse base;
    base.set_schema(1);
    base.set_request_id(req.request_id());
    base.set_blob(req.blob());
    if (found == by_wire_.end()) {
      pb::FetchResponse resp = base;
      resp.set_error("unknown blob");
      answer(resp);
      continue;
    }
    const ServedBlob& blob = *found->second;
    if (req.want_manifest()) {
      pb::FetchResponse resp = base;
      if (wrong_manifest_first && !wrong_sent) {
        wrong_sent = true;
        resp.set_blob_manifest(wrong_manifest_first->manifest);
      } else {
        resp.set_blob_manifest(blob.manifest);
      }
      manifests_sent_++;
      answer(resp);
    }
    for (const auto& range : req.chunks()) {
      for (uint32_t i = range.first(); i < range.first() + range.count(); ++i) {
        if (i >= blob.chunks.size()) break;
        pb::FetchResponse resp = base;
        resp.mutable_chunk()->set_index(i);
        std::string data = blob.chunks[i];
        if (tamper_once.count(i) && tampered.insert(i).second) data[data.size() / 2] ^= 0x40;
        if (foreign && foreign_once.count(i) && foreign_sent.insert(i).second &&
            i < foreign->chunks.size()) {
          data = foreign->chunks[i];
        }
        resp.mutable_chunk()->set_data(data);
        chunks_sent_++;
        answer(resp);
      }
    }
  }
  (void)client->disconnect();
}

}  // namespace sovdev::testing
