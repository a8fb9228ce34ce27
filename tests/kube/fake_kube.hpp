// Starts tests/fake-kube-apiserver (the Kubernetes API test double) with its own CA, server and
// client certificates, and talks to its control API through the production ApiClient.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "platform/kube/api_client.hpp"
#include "tests/support/process.hpp"

namespace sovdev::testing {

class FakeKube {
 public:
  static constexpr const char* kToken = "sovdev-test-token";

  // `server_cert`: the certificate the server presents, from make-certs.sh: "server" (names
  // localhost and 127.0.0.1) or "named" (names kube.sovdev.test only).
  explicit FakeKube(const std::string& server_cert = "server");
  ~FakeKube();

  std::string server() const { return "https://127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_.path(); }
  std::string file(const std::string& name) const { return dir_ / name; }

  // Credentials as a kubeconfig would give them.
  kube::Credentials cert_credentials() const;
  kube::Credentials token_credentials(const std::string& token = kToken) const;
  // A kubeconfig file with a client certificate (data inline), for the agent's config.
  std::string write_kubeconfig() const;

  // POST (or GET with an empty body) to /_fake/<what>; throws on a failed call.
  nlohmann::json control(const std::string& what, const nlohmann::json& body = nullptr);
  // Every object the double holds: (apiVersion, kind, namespace, name) → object.
  nlohmann::json objects();
  // One object, or null.
  nlohmann::json object(const std::string& kind, const std::string& ns, const std::string& name);

 private:
  TempDir dir_;
  std::unique_ptr<Child> server_;
  int port_ = 0;
  std::unique_ptr<kube::ApiClient> admin_;
};

}  // namespace sovdev::testing
