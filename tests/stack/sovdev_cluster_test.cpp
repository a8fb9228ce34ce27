// stacks/sovdev against what a real cluster does with it (issue 18, "stack defects a real cluster
// would hit"): Azure Redis keys in a URL, *.localhost hosts, single sign-on from inside a pod,
// multicast model-server names, the edge box's memory, and Pod Security "restricted".
#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/stack/stack_objects.hpp"
#include "tests/support/process.hpp"

namespace sovdev::testing {
namespace {

using nlohmann::json;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Host of an http(s) URL: between "://" and the next ':' or '/'.
std::string url_host(const std::string& url) {
  const size_t start = url.find("://");
  if (start == std::string::npos) return "";
  const size_t end = url.find_first_of(":/", start + 3);
  return url.substr(start + 3, end == std::string::npos ? std::string::npos : end - start - 3);
}

bool loopback_name(const std::string& host) {
  return host == "localhost" || ends_with(host, ".localhost") || host.rfind("127.", 0) == 0;
}

json container(const json& workload, const std::string& name) {
  for (const auto& c : workload["spec"]["template"]["spec"]["containers"]) {
    if (c["name"] == name) return c;
  }
  FAIL("no container " << name << " in " << workload["metadata"]["name"]);
  return {};
}

std::string ingress_host_of(const std::vector<json>& objects, const std::string& backend) {
  for (const auto& i : of_kind(objects, "Ingress")) {
    for (const auto& rule : i["spec"]["rules"]) {
      for (const auto& p : rule["http"]["paths"]) {
        if (p["backend"]["service"]["name"] == backend) return rule["host"].get<std::string>();
      }
    }
  }
  FAIL("no Ingress routes to Service " << backend);
  return "";
}

std::string percent_encoded(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("OpenWebUI percent-encodes the Redis password it puts into its websocket URL",
          "[stack]") {
  // An Azure Cache access key: base64, with '/', '+' and '='.
  const std::string key = "Ab3/xY+9kLm/Q2wE+rT7uIo=";
  for (const auto& env_name : kSovdevEnvs) {
    INFO(env_name);
    const auto env = sovdev_env(env_name);
    const json c =
        container(the(render_sovdev(env_name), "Deployment", "open-webui"), "open-webui");
    // No URL with the raw key in it anywhere in the container's environment.
    for (const auto& e : c.value("env", json::array())) {
      INFO(e.dump());
      CHECK(e.value("value", "").find("$(REDIS_PASSWORD)") == std::string::npos);
    }
    REQUIRE(c.contains("command"));
    REQUIRE(c["command"].size() == 5);
    // Run the container's own command with the key and print what OpenWebUI would get.
    std::vector<std::string> argv = {"/usr/bin/env", "REDIS_PASSWORD=" + key};
    for (const auto& a : c["command"]) argv.push_back(a.get<std::string>());
    argv.resize(5);  // env, REDIS_PASSWORD, python3, -c, script: then the program it hands over to
    for (const auto* a : {"/bin/sh", "-c", "printf %s \"$WEBSOCKET_REDIS_URL\""}) argv.push_back(a);
    auto out = run(argv);
    INFO(out.err);
    REQUIRE(out.exit_code == 0);
    const std::string query =
        env.values.count("REDIS_URL_QUERY") ? env.values.at("REDIS_URL_QUERY") : "";
    CHECK(out.out == env.values.at("REDIS_SCHEME") + "://:" + percent_encoded(key) +
                         "@redis:" + env.values.at("REDIS_PORT") + "/1" + query);
    // The image's CMD (`bash start.sh`) is what it hands over to.
    CHECK(c["command"][3] == "bash");
    CHECK(c["command"][4] == "start.sh");
  }
}

TEST_CASE("hosts outside dev are real DNS names under the environment's base domain", "[stack]") {
  for (const auto& env_name : kSovdevEnvs) {
    INFO(env_name);
    const auto env = sovdev_env(env_name);
    REQUIRE(env.values.count("BASE_DOMAIN") == 1);
    const std::string base = env.values.at("BASE_DOMAIN");
    const auto objects = render_sovdev(env_name);
    REQUIRE_FALSE(of_kind(objects, "Ingress").empty());
    for (const auto& i : of_kind(objects, "Ingress")) {
      for (const auto& rule : i["spec"]["rules"]) {
        const std::string host = rule["host"];
        INFO(host);
        CHECK(ends_with(host, "." + base));
        // Browsers send every *.localhost name to 127.0.0.1: only dev runs where the browser is.
        if (env_name != "dev") CHECK_FALSE(loopback_name(host));
      }
    }
  }
}

TEST_CASE("OpenWebUI fetches Authentik's discovery document at the name the browser uses",
          "[stack]") {
  // Authentik builds the issuer and every endpoint of its discovery document from the request's
  // host: the pod must ask under the public name (which the browser is then sent to), and that
  // name must resolve inside a pod, which *.localhost does not (it is the pod itself).
  for (const auto& env_name : kSovdevEnvs) {
    INFO(env_name);
    const auto env = sovdev_env(env_name);
    const auto objects = render_sovdev(env_name);
    const json c = container(the(objects, "Deployment", "open-webui"), "open-webui");
    const std::string url = env_value(c, "OPENID_PROVIDER_URL");
    const std::string auth_host = ingress_host_of(objects, "authentik");
    CHECK(url == env.values.at("PUBLIC_SCHEME") + "://" + auth_host +
                     env.values.at("PUBLIC_PORT_SUFFIX") +
                     "/application/o/open-webui/.well-known/openid-configuration");
    if (loopback_name(url_host(url))) {
      // The documented exception: dev, where sign-in through Authentik stays off.
      CHECK(env_name == "dev");
      CHECK(env_value(c, "ENABLE_OAUTH_SIGNUP") == "false");
    }
  }
}

TEST_CASE("LiteLLM reaches its model server through cluster DNS, never a multicast name",
          "[stack]") {
  for (const auto& env_name : kSovdevEnvs) {
    INFO(env_name);
    const auto objects = render_sovdev(env_name);
    const std::string config =
        the(objects, "ConfigMap", "litellm-config")["data"]["config.yaml"].get<std::string>();
    std::set<std::string> bases;
    for (size_t at = config.find("api_base: "); at != std::string::npos;
         at = config.find("api_base: ", at + 1)) {
      const size_t start = at + 10;
      bases.insert(config.substr(start, config.find('\n', start) - start));
    }
    REQUIRE_FALSE(bases.empty());
    for (const auto& base : bases) {
      const std::string host = url_host(base);
      INFO(base);
      // CoreDNS forwards to the node's resolver and does no multicast DNS.
      CHECK_FALSE(ends_with(host, ".local"));
      if (host.find('.') != std::string::npos) continue;  // a DNS name the upstream resolver knows
      // A bare name is a Service of the stack; without a selector its EndpointSlice carries the
      // address, on the Service's port.
      const json svc = the(objects, "Service", host);
      if (svc["spec"].contains("selector") || svc["spec"].value("type", "") == "ExternalName") {
        continue;
      }
      const int port = svc["spec"]["ports"][0]["port"];
      CHECK(base.find(":" + std::to_string(port)) != std::string::npos);
      bool found = false;
      for (const auto& slice : of_kind(objects, "EndpointSlice")) {
        if (slice["metadata"]["labels"].value("kubernetes.io/service-name", "") != host) continue;
        found = true;
        CHECK(slice["addressType"] == "IPv4");
        CHECK(slice["ports"][0]["name"] == svc["spec"]["ports"][0]["name"]);
        CHECK(slice["ports"][0]["port"] == port);
        for (const auto& ep : slice["endpoints"]) {
          for (const auto& a : ep["addresses"]) {
            const std::string addr = a;
            unsigned b[4];
            char tail;
            INFO(addr);
            CHECK(std::sscanf(addr.c_str(), "%u.%u.%u.%u%c", &b[0], &b[1], &b[2], &b[3], &tail) ==
                  4);
            // The API server refuses loopback and link-local endpoints.
            CHECK(b[0] != 127);
            CHECK_FALSE((b[0] == 169 && b[1] == 254));
          }
        }
      }
      CHECK(found);
    }
  }
}

}  // namespace sovdev::testing
