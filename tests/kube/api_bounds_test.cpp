// Issue #19: the Kubernetes API client's answers are bounded in bytes (2xx included), its
// errors never carry object data, and kubeconfig's tls-server-name is honoured.
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "platform/kube/api_client.hpp"
#include "platform/proc/memory.hpp"
#include "tests/kube/fake_kube.hpp"
#include "tests/support/sanitizer.hpp"

namespace sovdev::testing {
namespace {

using Catch::Matchers::Contains;
constexpr uint64_t kMiB = 1024 * 1024;

TEST_CASE("a 2xx answer past the byte cap is refused with a clear error and memory stays bounded",
          "[kube][bounds]") {
  // Shown in the issue: a 400 MB answer to a PATCH took the agent to 508 MB.
  FakeKube fake;
  fake.control("inject", {{"method", "PATCH"},
                          {"path_regex", "/configmaps/"},
                          {"action", "huge"},
                          {"bytes", 200 * kMiB},
                          {"count", -1}});
  auto api = kube::ApiClient::create(fake.token_credentials());
  REQUIRE(api);
  const uint64_t before = proc::read_memory().anon_bytes;
  // The peak, sampled while the answer arrives: what is held is freed before request() returns.
  std::atomic<bool> sampling{true};
  std::atomic<uint64_t> peak{before};
  std::thread sampler([&] {
    while (sampling) {
      const uint64_t now = proc::read_memory().anon_bytes;
      if (now > peak) peak = now;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  // What the kube target keeps of an apply's answer.
  const std::set<std::string> keep = {"apiVersion", "kind", "metadata", "spec", "status"};
  const std::string body =
      R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"default"}})";
  auto sent =
      (*api)->request("PATCH", "/api/v1/namespaces/default/configmaps/x?fieldManager=t&force=true",
                      body, "application/apply-patch+yaml", &keep);
  sampling = false;
  sampler.join();
  const uint64_t grown = peak > before ? peak - before : 0;
  WARN("private memory grew " << grown / kMiB << " MiB for a 200 MiB answer (cap 16 MiB)");
  REQUIRE_FALSE(sent);
  CHECK(sent.error().code == Errc::too_large);
  CHECK_THAT(sent.error().message, Contains("HTTP 200") && Contains("16777216 bytes"));
  if (kMemoryBarsApply) CHECK(grown < 40 * kMiB);
  // The connection is not left in a broken state: the next request works.
  fake.control("clear-injections", nlohmann::json::object());
  auto version = (*api)->get("/version");
  REQUIRE(version);
  CHECK(version->code == 200);
}

TEST_CASE("an error from the API server keeps its code, reason and field paths but no values",
          "[kube][bounds]") {
  kube::HttpResponse response;
  response.code = 422;
  response.body = R"({"kind":"Status","apiVersion":"v1","status":"Failure",
    "message":"Secret \"db\" is invalid: data[password]: Invalid value: \"hunter2-s3cret\": a valid config key must consist of alphanumeric characters, spec.replicas: Invalid value: 12345: must be ok",
    "reason":"Invalid","details":{"name":"db","kind":"Secret","causes":[
      {"reason":"FieldValueInvalid","message":"Invalid value: \"hunter2-s3cret\"","field":"data[password]"}]},
    "code":422})";
  const Error e = kube::api_error("PATCH", "/api/v1/namespaces/a/secrets/db", response);
  INFO(e.message);
  CHECK(e.code == Errc::invalid);
  CHECK_THAT(e.message, Contains("422 Invalid") && Contains("data[password]"));
  CHECK_THAT(e.message, !Contains("hunter2") && !Contains("12345"));

  response.code = 400;
  response.body = "stringData:\n  token: hunter2-s3cret\n";  // not a Status: never shown
  const Error raw = kube::api_error("PATCH", "/api/v1/namespaces/a/secrets/db", response);
  INFO(raw.message);
  CHECK_THAT(raw.message, !Contains("hunter2") && Contains("not a Kubernetes Status"));
  CHECK(kube::without_values(std::string(5000, 'a')).size() < 400);
}

TEST_CASE(
    "kubeconfig's tls-server-name checks the certificate against that name while "
    "connecting to the server's address",
    "[kube][bounds]") {
  FakeKube fake("named");  // its certificate names kube.sovdev.test only
  kube::Credentials credentials = fake.token_credentials();
  {
    auto api = kube::ApiClient::create(credentials);
    REQUIRE(api);
    auto refused = (*api)->get("/version");
    REQUIRE_FALSE(refused);  // 127.0.0.1 is not in the certificate
  }
  credentials.tls_server_name = "kube.sovdev.test";
  auto api = kube::ApiClient::create(credentials);
  REQUIRE(api);
  auto version = (*api)->get("/version");
  if (!version) FAIL(version.error().message);
  CHECK(version->code == 200);
  // Another name is still refused: the name is checked, not the check skipped.
  credentials.tls_server_name = "other.sovdev.test";
  auto other = kube::ApiClient::create(credentials);
  REQUIRE(other);
  CHECK_FALSE((*other)->get("/version"));
}

TEST_CASE("a server URL splits into scheme, host, port and path", "[kube][bounds]") {
  auto a = kube::split_server("https://[::1]:6443/prefix");
  REQUIRE(a);
  CHECK(a->host == "[::1]");
  CHECK(a->port == "6443");
  CHECK(a->rest == "/prefix");
  auto b = kube::split_server("https://example.com");
  REQUIRE(b);
  CHECK(b->host == "example.com");
  CHECK(b->port == "443");
  CHECK_FALSE(kube::split_server("https://:99"));
}

}  // namespace
}  // namespace sovdev::testing
