// The HTTP endpoint behind /metrics: listen addresses, methods, errors the operator sees.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hub/http_endpoint.hpp"
#include "tests/hub/http_client.hpp"

using namespace sovdev;
using namespace sovdev::hub;
using sovdev::testing::http_request;

namespace {

HttpResponse echo(std::string_view path) {
  if (path != "/metrics") return {404, "text/plain", "nope\n"};
  return {200, "text/plain; version=0.0.4; charset=utf-8", "x 1\n"};
}

}  // namespace

TEST_CASE("listen addresses are ADDR:PORT with IPv6 in brackets", "[metrics]") {
  auto v4 = parse_listen_address("127.0.0.1:9469");
  REQUIRE(v4);
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 9469);
  auto v6 = parse_listen_address("[::1]:0");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 0);
  for (const char* bad : {"", "9469", "127.0.0.1", "127.0.0.1:", ":9469", "::1:9469", "[::1]",
                          "[::1]9469", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:94x"}) {
    INFO(bad);
    auto parsed = parse_listen_address(bad);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().code == Errc::usage);
    CHECK_THAT(parsed.error().message, Catch::Contains("ADDR:PORT"));
  }
}

TEST_CASE("the endpoint answers GET and HEAD, refuses other methods, and reports its port",
          "[metrics]") {
  auto endpoint = HttpEndpoint::start("127.0.0.1:0", echo);
  REQUIRE(endpoint);
  const int port = (*endpoint)->port();
  REQUIRE(port > 0);
  CHECK((*endpoint)->base_url() == "http://127.0.0.1:" + std::to_string(port));

  auto got = http_request("127.0.0.1", port, "GET", "/metrics");
  CHECK(got.status == 200);
  CHECK(got.body == "x 1\n");
  CHECK(got.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");

  auto head = http_request("127.0.0.1", port, "HEAD", "/metrics");
  CHECK(head.status == 200);
  CHECK(head.body.empty());

  CHECK(http_request("127.0.0.1", port, "GET", "/other").status == 404);
  auto post = http_request("127.0.0.1", port, "POST", "/metrics");
  CHECK(post.status == 405);
  CHECK(post.header("Allow") == "GET, HEAD");
}

TEST_CASE("a handler that throws answers 500 and the endpoint keeps serving", "[metrics]") {
  auto endpoint = HttpEndpoint::start("127.0.0.1:0", [](std::string_view path) -> HttpResponse {
    if (path == "/boom") throw std::runtime_error("boom");
    return {200, "text/plain", "ok\n"};
  });
  REQUIRE(endpoint);
  const int port = (*endpoint)->port();
  CHECK(http_request("127.0.0.1", port, "GET", "/boom").status == 500);
  CHECK(http_request("127.0.0.1", port, "GET", "/").body == "ok\n");
}

TEST_CASE("a taken port is refused with advice, not a late log line", "[metrics]") {
  auto first = HttpEndpoint::start("127.0.0.1:0", echo);
  REQUIRE(first);
  const std::string taken = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = HttpEndpoint::start(taken, echo);
  REQUIRE_FALSE(second);
  CHECK(second.error().code == Errc::io);
  CHECK_THAT(second.error().message, Catch::Contains("already in use"));

  auto foreign = HttpEndpoint::start("192.0.2.1:0", echo);  // TEST-NET-1: not ours
  REQUIRE_FALSE(foreign);
  CHECK_THAT(foreign.error().message, Catch::Contains("not an address of this machine"));
}

TEST_CASE("the endpoint stops and frees its port when destroyed", "[metrics]") {
  int port = 0;
  {
    auto endpoint = HttpEndpoint::start("127.0.0.1:0", echo);
    REQUIRE(endpoint);
    port = (*endpoint)->port();
  }
  CHECK(http_request("127.0.0.1", port, "GET", "/metrics").status == 0);
  auto again = HttpEndpoint::start("127.0.0.1:" + std::to_string(port), echo);
  CHECK(again);
}

TEST_CASE("the endpoint listens on IPv6 loopback", "[metrics]") {
  // Some containers have no IPv6 at all; that is the machine, not the hub.
  const int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool have_v6 = probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (probe >= 0) ::close(probe);
  if (!have_v6) {
    WARN("skipped: this machine has no IPv6 loopback");
    return;
  }
  auto endpoint = HttpEndpoint::start("[::1]:0", echo);
  REQUIRE(endpoint);
  const int port = (*endpoint)->port();
  CHECK((*endpoint)->base_url() == "http://[::1]:" + std::to_string(port));
  CHECK(http_request("::1", port, "GET", "/metrics").body == "x 1\n");
}
