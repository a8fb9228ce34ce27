// The read-only OCI distribution endpoint the agent serves on loopback (`sovdev-agent images
// serve`, its own process): containerd (MicroK8s, k3s, RKE2) uses it as a registry mirror
// (hosts.toml, registries.yaml: agent/images/hosts_toml.hpp) and pulls the images the bundles
// carry from it without the internet.
//
// It answers by digest only, whatever the repository name (the content is what the digest
// says): GET/HEAD `/v2/`, `/v2/<name>/manifests/<digest>`, `/v2/<name>/blobs/<digest>`. Tags,
// uploads, deletions and listings are refused with the distribution spec's error JSON. Each
// body streams from the blob's zstd file through a decoder (window ≤ 2 MiB) into
// libmicrohttpd's block buffer, and its SHA-256 is checked before the last bytes leave: a
// damaged, short or long file cuts the connection, so a client never gets a whole wrong body.
//
// Memory stays bounded whatever the blob's size: at most `max_connections` connections, and at
// most `max_streams` bodies decoding at once (each ~2.4 MiB: the zstd window and its buffers);
// a request beyond that waits, suspended, until a stream ends. Driven by one internal thread of
// libmicrohttpd: the BlobSource is only ever called from that thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "agent/images/blob_source.hpp"
#include "common/error.hpp"

struct MHD_Daemon;

namespace sovdev::agent::images {

struct RegistryOptions {
  // ADDR:PORT, numeric ("127.0.0.1:5050", "[::1]:5050"; port 0: any free one).
  std::string listen = "127.0.0.1:5050";
  // The endpoint has no authentication and serves whatever the bundles carry (private images
  // included): only a loopback address unless this is set (a node serving the other nodes of
  // its own cluster on a trusted network).
  bool allow_remote = false;
  unsigned max_connections = 8;
  unsigned max_streams = 3;  // bodies decoding at once; containerd pulls 3 layers at a time
  // A connection idle this long (no request, or a client that stopped reading) is closed.
  unsigned idle_timeout_seconds = 30;
};

struct ParsedListen {
  std::string host;  // without brackets
  std::uint16_t port = 0;
  bool loopback = false;  // 127.0.0.0/8 or ::1
};

// Errc::usage with an example when `text` is not a numeric ADDR:PORT.
[[nodiscard]] Expected<ParsedListen> parse_registry_listen(std::string_view text);

struct RegistryCounters;

class RegistryServer {
 public:
  // Binds before returning: a bad or remote address (without allow_remote) or a taken port is
  // reported here (Errc::usage, Errc::io). `source` must outlive the server.
  [[nodiscard]] static Expected<std::unique_ptr<RegistryServer>> start(BlobSource& source,
                                                                       RegistryOptions options);
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;
  // Stops accepting, cuts the connections still open and joins the thread.
  ~RegistryServer();

  std::uint16_t port() const { return port_; }
  // "http://127.0.0.1:5050": the URL hosts.toml names (the bound port, not the one asked for).
  const std::string& base_url() const { return base_url_; }
  // Bodies decoding now, and requests waiting for one of them to end (for status and tests).
  unsigned streams_open() const;
  size_t requests_waiting() const;

 private:
  struct StopDaemon {
    void operator()(MHD_Daemon* d) const;
  };
  RegistryServer(BlobSource& source, RegistryOptions options);
  friend struct RegistryCallbacks;

  BlobSource& source_;
  RegistryOptions options_;
  std::uint16_t port_ = 0;
  std::string base_url_;
  std::unique_ptr<RegistryCounters> counters_;  // streams open, connections waiting for one
  // Last: stopped (its thread joined) before what its callbacks use is destroyed.
  std::unique_ptr<MHD_Daemon, StopDaemon> daemon_;
};

}  // namespace sovdev::agent::images
