// The loopback registry over real sockets, with the curl CLI as the client: headers, the
// spec's errors, a damaged file cutting the connection, and its bounds (idle clients,
// connections, decoding streams).
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "agent/images/registry_server.hpp"
#include "common/hex.hpp"
#include "tests/images/oci_fixture.hpp"

using namespace sovdev;
using namespace sovdev::agent::images;
using namespace sovdev::testing;

namespace {

struct Served {
  TempDir tmp;
  TestImage image = make_test_image();
  TestBlobSource source{tmp.path()};
  std::unique_ptr<RegistryServer> server;

  explicit Served(RegistryOptions options = {}) {
    for (const TestBlob* blob : image.all()) source.add(*blob);
    options.listen = "127.0.0.1:0";
    auto started = RegistryServer::start(source, options);
    REQUIRE(started);
    server = std::move(*started);
  }
  std::string url(const std::string& path) const { return server->base_url() + path; }
};

// A TCP connection that sends nothing; `closed_by_peer` waits for the server to drop it.
class IdleClient {
 public:
  explicit IdleClient(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{0, 100 * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~IdleClient() { ::close(fd_); }
  IdleClient(const IdleClient&) = delete;
  IdleClient& operator=(const IdleClient&) = delete;
  bool connected() const { return connected_; }
  bool closed_by_peer() {
    char c = 0;
    const ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

 private:
  int fd_;
  bool connected_ = false;
};

// Test sockets are close-on-exec: a curl started meanwhile must not keep them open.
// Asks for a blob and never reads the answer (a small receive buffer), so the server's stream
// stays open, blocked on the socket, until this is closed.
class StalledReader {
 public:
  StalledReader(int port, const std::string& path)
      : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    const int small = 4096;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
          ::send(fd_, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size());
  }
  ~StalledReader() { close(); }
  StalledReader(const StalledReader&) = delete;
  StalledReader& operator=(const StalledReader&) = delete;
  bool ok() const { return ok_; }
  void close() {
    const linger reset{1, 0};  // an RST, as a client that gives up sends
    if (fd_ >= 0) ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
  bool ok_ = false;
};

// More than loopback's socket buffers hold, so a stalled reader keeps the server's stream open.
TestBlob big_blob() {
  std::string bytes(24 * 1024 * 1024, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 7919) >> 5);
  return {"application/vnd.oci.image.layer.v1.tar", bytes};
}

}  // namespace

TEST_CASE("the registry answers /v2/ and serves manifests and blobs by digest with their headers",
          "[images][registry]") {
  Served s;
  auto base = curl(s.tmp, {}, s.url("/v2/"));
  CHECK(base.exit_code == 0);
  CHECK(base.status == 200);
  CHECK(base.header("Docker-Distribution-API-Version") == "registry/2.0");

  const TestBlob& index = s.image.index;
  auto head =
      curl(s.tmp, {"-I"},
           s.url("/v2/library/some/name/manifests/" + index.digest() + "?ns=registry.example.com"));
  CHECK(head.status == 200);
  CHECK(head.header("Content-Type") == "application/vnd.oci.image.index.v1+json");
  CHECK(head.header("Content-Length") == std::to_string(index.bytes.size()));
  CHECK(head.header("Docker-Content-Digest") == index.digest());

  for (const TestBlob* blob : s.image.all()) {
    INFO(blob->media_type << " " << blob->digest());
    auto got = curl(s.tmp, {}, s.url("/v2/any/name/blobs/" + blob->digest()));
    CHECK(got.exit_code == 0);
    CHECK(got.status == 200);
    CHECK(got.body == blob->bytes);
    CHECK(got.header("Content-Type") == "application/octet-stream");
    CHECK(got.header("Content-Length") == std::to_string(blob->bytes.size()));
    CHECK(got.header("Docker-Content-Digest") == blob->digest());
  }
  auto manifest = curl(s.tmp, {}, s.url("/v2/x/manifests/" + s.image.manifests[1].digest()));
  CHECK(manifest.status == 200);
  CHECK(manifest.body == s.image.manifests[1].bytes);
  CHECK(manifest.header("Content-Type") == "application/vnd.oci.image.manifest.v1+json");
}

TEST_CASE("the registry answers unknown digests, tags, writes and traversal with the spec's errors",
          "[images][registry]") {
  Served s;
  const std::string unknown = "sha256:" + std::string(64, '0');
  auto blob = curl(s.tmp, {}, s.url("/v2/x/blobs/" + unknown));
  CHECK(blob.status == 404);
  CHECK_THAT(blob.body, Catch::Contains("\"code\":\"BLOB_UNKNOWN\""));
  CHECK(blob.header("Content-Type") == "application/json");
  auto manifest = curl(s.tmp, {}, s.url("/v2/x/manifests/" + unknown));
  CHECK(manifest.status == 404);
  CHECK_THAT(manifest.body, Catch::Contains("MANIFEST_UNKNOWN"));
  // A layer is a blob, not a manifest: the manifests route does not serve it.
  auto layer = curl(s.tmp, {}, s.url("/v2/x/manifests/" + s.image.layers[0].digest()));
  CHECK(layer.status == 404);
  CHECK_THAT(layer.body, Catch::Contains("MANIFEST_UNKNOWN"));
  auto tag = curl(s.tmp, {}, s.url("/v2/library/postgres/manifests/16"));
  CHECK(tag.status == 404);
  CHECK_THAT(tag.body, Catch::Contains("MANIFEST_UNKNOWN"));
  auto head_unknown = curl(s.tmp, {"-I"}, s.url("/v2/x/blobs/" + unknown));
  CHECK(head_unknown.status == 404);

  auto post = curl(s.tmp, {"-X", "POST", "--data-binary", "x"}, s.url("/v2/x/blobs/uploads/"));
  CHECK(post.status == 405);
  CHECK_THAT(post.body, Catch::Contains("UNSUPPORTED"));
  CHECK(post.header("Allow") == "GET, HEAD");
  auto put = curl(s.tmp, {"-X", "PUT", "--data-binary", "{}"},
                  s.url("/v2/x/manifests/" + s.image.index.digest()));
  CHECK(put.status == 405);

  const std::string known = s.image.layers[0].digest();
  for (const std::string& path :
       std::vector<std::string>{"/v2/../blobs/" + known, "/v2/%2e%2e/blobs/" + known,
                                "/v2/a/%2e%2e/%2e%2e/blobs/" + known, "/v2/../../../etc/passwd",
                                "/../../etc/passwd", "/v2/x/blobs/..%2f..%2fetc%2fpasswd"}) {
    INFO(path);
    auto got = curl(s.tmp, {"--path-as-is"}, s.url(path));
    CHECK(got.exit_code == 0);
    CHECK((got.status == 400 || got.status == 404));
    CHECK_THAT(got.body, Catch::Contains("\"errors\""));
  }
}

TEST_CASE("a request whose headers pass the connection's memory is refused, others still served",
          "[images][registry]") {
  Served s;
  const std::string huge = "X-Padding: " + std::string(64 * 1024, 'a');
  auto refused = curl(s.tmp, {"-H", huge}, s.url("/v2/"));
  CHECK(refused.status != 200);
  auto fine = curl(s.tmp, {}, s.url("/v2/x/blobs/" + s.image.layers[0].digest()));
  CHECK(fine.status == 200);
  CHECK(fine.body == s.image.layers[0].bytes);
}

TEST_CASE("a damaged blob file cuts the connection instead of sending a wrong body",
          "[images][registry]") {
  Served s;
  // Random bytes are stored raw by zstd: the flipped byte decodes silently, only the digest
  // check catches it.
  std::string bytes(512 * 1024, '\0');
  unsigned x = 7;
  for (char& c : bytes) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
  const TestBlob blob{"application/vnd.oci.image.layer.v1.tar", bytes};
  const std::string path = s.source.add(blob);
  std::string zst = read_text(path);
  zst[zst.size() / 2] = static_cast<char>(zst[zst.size() / 2] ^ 1);
  write_text(path, zst);

  auto got = curl(s.tmp, {}, s.url("/v2/x/blobs/" + blob.digest()));
  CHECK(got.exit_code != 0);  // 18: the body ended before its Content-Length
  CHECK(got.body.size() < bytes.size());
  CHECK(got.body != bytes);

  // Cut short on disk: the same.
  write_text(path, zst.substr(0, zst.size() / 3));
  auto cut = curl(s.tmp, {}, s.url("/v2/x/blobs/" + blob.digest()));
  CHECK(cut.exit_code != 0);
  CHECK(cut.body.size() < bytes.size());

  // The server goes on serving the others.
  auto fine = curl(s.tmp, {}, s.url("/v2/x/blobs/" + s.image.layers[0].digest()));
  CHECK(fine.status == 200);
  CHECK(fine.body == s.image.layers[0].bytes);
}

TEST_CASE("a client that connects and sends nothing neither blocks others nor stays forever",
          "[images][registry]") {
  RegistryOptions options;
  options.idle_timeout_seconds = 1;
  Served s(options);
  IdleClient idle(s.server->port());
  REQUIRE(idle.connected());
  const auto start = std::chrono::steady_clock::now();
  auto got = curl(s.tmp, {}, s.url("/v2/x/blobs/" + s.image.layers[0].digest()));
  CHECK(got.status == 200);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(900));
  CHECK(wait_until([&] { return idle.closed_by_peer(); }, std::chrono::seconds(5)));
}

TEST_CASE("connections beyond the limit wait unanswered until an idle one times out",
          "[images][registry]") {
  RegistryOptions options;
  options.max_connections = 2;
  options.idle_timeout_seconds = 1;
  Served s(options);
  IdleClient a(s.server->port());
  IdleClient b(s.server->port());
  REQUIRE((a.connected() && b.connected()));
  // Both places are taken: the server stops accepting, the third waits in the listen backlog
  // until the idle ones are dropped after their timeout.
  const auto start = std::chrono::steady_clock::now();
  auto third = curl(s.tmp, {"--max-time", "10"}, s.url("/v2/"));
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(third.status == 200);
  CHECK(waited >= std::chrono::milliseconds(700));
  CHECK(a.closed_by_peer());
  CHECK(b.closed_by_peer());
}

TEST_CASE("requests beyond the decoding streams wait their turn and are then served whole",
          "[images][registry]") {
  RegistryOptions options;
  options.max_streams = 1;
  Served s(options);
  const TestBlob big = big_blob();
  s.source.add(big);
  StalledReader first(s.server->port(), "/v2/x/blobs/" + big.digest());
  REQUIRE(first.ok());
  REQUIRE(wait_until([&] { return s.server->streams_open() == 1; }, std::chrono::seconds(10)));
  TempDir other;
  CurlReply second;
  std::thread asker([&] { second = curl(other, {}, s.url("/v2/y/blobs/" + big.digest())); });
  CHECK(wait_until([&] { return s.server->requests_waiting() == 1; }, std::chrono::seconds(10)));
  CHECK(s.server->streams_open() == 1);
  first.close();  // its stream ends with an error: the waiting request gets the slot
  asker.join();
  CHECK(second.status == 200);
  CHECK(second.exit_code == 0);
  CHECK(second.body == big.bytes);
  CHECK(wait_until([&] { return s.server->streams_open() == 0; }, std::chrono::seconds(5)));
}

TEST_CASE("stopping the registry with requests waiting for a stream ends them, without a crash",
          "[images][registry]") {
  RegistryOptions options;
  options.max_streams = 1;
  Served s(options);
  const TestBlob big = big_blob();
  s.source.add(big);
  StalledReader first(s.server->port(), "/v2/x/blobs/" + big.digest());
  REQUIRE(first.ok());
  REQUIRE(wait_until([&] { return s.server->streams_open() == 1; }, std::chrono::seconds(10)));
  TempDir other;
  CurlReply waiting;
  std::thread asker([&] { waiting = curl(other, {}, s.url("/v2/y/blobs/" + big.digest())); });
  REQUIRE(wait_until([&] { return s.server->requests_waiting() == 1; }, std::chrono::seconds(10)));
  s.server.reset();
  asker.join();
  CHECK(waiting.status != 200);
  CHECK(waiting.body.size() < big.bytes.size());
}

TEST_CASE("the registry listens on loopback only unless a remote address is allowed",
          "[images][registry]") {
  TestBlobSource source("/nonexistent");
  RegistryOptions options;
  options.listen = "0.0.0.0:0";
  auto refused = RegistryServer::start(source, options);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::usage);
  CHECK_THAT(refused.error().message, Catch::Contains("loopback"));
  options.allow_remote = true;
  CHECK(RegistryServer::start(source, options));
  options.listen = "[::1]:0";
  options.allow_remote = false;
  auto v6 = RegistryServer::start(source, options);
  if (v6) CHECK_THAT((*v6)->base_url(), Catch::StartsWith("http://[::1]:"));
  for (const char* bad : {"localhost:5050", "127.0.0.1", "127.0.0.1:99999", "::1:5050"}) {
    INFO(bad);
    CHECK_FALSE(parse_registry_listen(bad));
  }
  auto ok = parse_registry_listen("127.0.0.2:5050");
  REQUIRE(ok);
  CHECK(ok->loopback);
  CHECK_FALSE(parse_registry_listen("10.0.0.1:5050")->loopback);
}
