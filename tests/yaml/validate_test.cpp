// Every refusal names the file and the line of the offending field.
#include <string>

#include <catch2/catch.hpp>

#include "tests/yaml/helpers.hpp"

using sovdev::Errc;
using sovdev::yaml::test::parse_error;
using sovdev::yaml::test::parse_ok;

namespace {

std::string refusal(const std::string& text) {
  auto error = parse_error(text);
  CHECK(error.code == Errc::invalid);
  return error.message;
}

// apiVersion, kind and metadata.name on lines 1-4; more metadata from line 5.
std::string object(const std::string& api_version, const std::string& kind, const std::string& name,
                   const std::string& more_metadata = "") {
  return "apiVersion: " + api_version + "\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n" +
         more_metadata;
}

}  // namespace

TEST_CASE("a document that is not a map is refused", "[yaml][validate]") {
  CHECK(refusal("just text\n") == "test.yaml:1: a Kubernetes object must be a map, not a string");
  CHECK(refusal("---\n- a\n- b\n") ==
        "test.yaml:2: a Kubernetes object must be a map, not a sequence");
}

TEST_CASE("apiVersion must be a non-empty group/version string", "[yaml][validate]") {
  CHECK(refusal("kind: ConfigMap\nmetadata:\n  name: c\n") ==
        "test.yaml:1: ConfigMap/c: apiVersion is missing");
  CHECK(refusal("kind: ConfigMap\nmetadata:\n  name: c\napiVersion: 1\n") ==
        "test.yaml:4: ConfigMap/c: apiVersion must be a non-empty string");
  CHECK(refusal("kind: ConfigMap\napiVersion: \"\"\nmetadata:\n  name: c\n") ==
        "test.yaml:2: ConfigMap/c: apiVersion must be a non-empty string");
  CHECK(refusal(object("a/b/c", "ConfigMap", "c")) ==
        "test.yaml:1: ConfigMap/c: apiVersion \"a/b/c\" must be <version> or <group>/<version>");
  CHECK(refusal(object("apps/", "Deployment", "d")) ==
        "test.yaml:1: Deployment/d: apiVersion \"apps/\" must be <version> or "
        "<group>/<version>");
}

TEST_CASE("kind must be a non-empty string", "[yaml][validate]") {
  CHECK(refusal("apiVersion: v1\nmetadata:\n  name: c\n") == "test.yaml:1: kind is missing");
  CHECK(refusal("apiVersion: v1\nkind: ''\nmetadata:\n  name: c\n") ==
        "test.yaml:2: kind must be a non-empty string");
  CHECK(refusal("apiVersion: v1\nkind: [a]\nmetadata:\n  name: c\n") ==
        "test.yaml:2: kind must be a non-empty string");
}

TEST_CASE("metadata must be a map", "[yaml][validate]") {
  CHECK(refusal("apiVersion: v1\nkind: ConfigMap\n") ==
        "test.yaml:1: ConfigMap: metadata is missing");
  CHECK(refusal("apiVersion: v1\nkind: ConfigMap\nmetadata: c\n") ==
        "test.yaml:3: ConfigMap: metadata must be a map, not a string");
}

TEST_CASE("metadata.name must be a non-empty string", "[yaml][validate]") {
  CHECK(refusal("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {}\n") ==
        "test.yaml:3: ConfigMap: metadata.name is missing");
  CHECK(refusal("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name:\n") ==
        "test.yaml:3: ConfigMap: metadata.name is missing");
  CHECK(refusal(object("v1", "ConfigMap", "123")) ==
        "test.yaml:4: ConfigMap: metadata.name must be a string, not a number: quote it");
  CHECK(parse_ok(object("v1", "ConfigMap", "\"123\"")).at(0).name == "123");
  CHECK(refusal(object("v1", "ConfigMap", "{a: b}")) ==
        "test.yaml:4: ConfigMap: metadata.name must be a string, not a map");
}

TEST_CASE("generateName without a name is refused: server-side apply needs a name",
          "[yaml][validate]") {
  CHECK(refusal("apiVersion: batch/v1\nkind: Job\nmetadata:\n  namespace: team\n"
                "  generateName: migrate-\n") ==
        "test.yaml:5: Job: metadata.generateName without metadata.name is not supported: "
        "server-side apply needs a name");
}

TEST_CASE("a Namespace name must be an RFC 1123 label", "[yaml][validate]") {
  CHECK_THAT(refusal(object("v1", "Namespace", "Monitoring")),
             Catch::StartsWith("test.yaml:4: Namespace/Monitoring: metadata.name \"Monitoring\" "
                               "is not valid for a Namespace: it must be an RFC 1123 label"));
  CHECK_THAT(refusal(object("v1", "Namespace", "a.b")), Catch::Contains("RFC 1123 label"));
  CHECK_THAT(refusal(object("v1", "Namespace", std::string(64, 'a'))),
             Catch::Contains("RFC 1123 label"));
  CHECK(parse_ok(object("v1", "Namespace", std::string(63, 'a'))).size() == 1);
}

TEST_CASE("a Service name must be an RFC 1035 label", "[yaml][validate]") {
  CHECK_THAT(refusal(object("v1", "Service", "\"1api\"")),
             Catch::StartsWith("test.yaml:4: Service/1api: metadata.name \"1api\" is not valid "
                               "for a Service: it must be an RFC 1035 label"));
  CHECK(parse_ok(object("v1", "ConfigMap", "\"1api\"")).size() == 1);
  // Knative's Service is a custom resource: the core rule does not apply to it.
  CHECK(parse_ok(object("serving.knative.dev/v1", "Service", "\"1api.x\"")).size() == 1);
}

TEST_CASE("RBAC names are path segments, so ':' is allowed", "[yaml][validate]") {
  const std::string rbac = "rbac.authorization.k8s.io/v1";
  CHECK(parse_ok(object(rbac, "ClusterRole", "system:aggregated-metrics-reader")).size() == 1);
  CHECK(parse_ok(object(rbac, "RoleBinding", "Mixed_Case", "  namespace: team\n")).size() == 1);
  CHECK_THAT(refusal(object(rbac, "Role", "a/b")),
             Catch::StartsWith("test.yaml:4: Role/a/b: metadata.name \"a/b\" is not valid for a "
                               "Role: it must be a path segment"));
  CHECK_THAT(refusal(object(rbac, "ClusterRoleBinding", "\"..\"")),
             Catch::Contains("path segment"));
  CHECK_THAT(refusal(object(rbac, "ClusterRole", "50%")), Catch::Contains("path segment"));
}

TEST_CASE("other names must be RFC 1123 subdomains", "[yaml][validate]") {
  CHECK(parse_ok(object("apps/v1", "Deployment", "web.v2-blue")).size() == 1);
  CHECK_THAT(refusal(object("v1", "ConfigMap", "my_config")),
             Catch::StartsWith("test.yaml:4: ConfigMap/my_config: metadata.name \"my_config\" is "
                               "not valid for a ConfigMap: it must be an RFC 1123 subdomain"));
  CHECK_THAT(refusal(object("monitoring.coreos.com/v1", "ServiceMonitor", "system:x")),
             Catch::Contains("RFC 1123 subdomain"));
  CHECK_THAT(refusal(object("v1", "Secret", "a..b")), Catch::Contains("RFC 1123 subdomain"));
}

TEST_CASE("metadata.namespace must be an RFC 1123 label", "[yaml][validate]") {
  CHECK(refusal(object("v1", "ConfigMap", "c", "  namespace: Team_A\n")) ==
        "test.yaml:5: ConfigMap/c: metadata.namespace \"Team_A\" is not valid: it must be an "
        "RFC 1123 label: at most 63 lowercase letters, digits and '-', starting and ending with "
        "a letter or digit");
  CHECK(refusal(object("v1", "ConfigMap", "c", "  namespace: 7\n")) ==
        "test.yaml:5: ConfigMap/c: metadata.namespace must be a string, not a number: quote it");
  // YAML 1.1 reads a bare n as false, and so does kubectl.
  CHECK(refusal(object("v1", "ConfigMap", "c", "  namespace: n\n")) ==
        "test.yaml:5: ConfigMap/c: metadata.namespace must be a string, not a boolean: quote it");
  // Empty or null means unspecified, as for kubectl.
  CHECK(parse_ok(object("v1", "ConfigMap", "c", "  namespace:\n")).at(0).namespace_.empty());
  CHECK(parse_ok(object("v1", "ConfigMap", "c", "  namespace: ''\n")).at(0).namespace_.empty());
}

TEST_CASE("a namespace on a cluster-scoped kind is refused", "[yaml][validate]") {
  const std::string rbac = "rbac.authorization.k8s.io/v1";
  CHECK(refusal(object(rbac, "ClusterRole", "r", "  namespace: monitoring\n")) ==
        "test.yaml:5: ClusterRole/r: ClusterRole is cluster-scoped: remove metadata.namespace");
  CHECK_THAT(refusal(object("v1", "Namespace", "team", "  namespace: team\n")),
             Catch::Contains("Namespace is cluster-scoped"));
  CHECK_THAT(refusal(object("storage.k8s.io/v1", "StorageClass", "s", "  namespace: team\n")),
             Catch::Contains("cluster-scoped"));
  CHECK_THAT(refusal(object("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
                            "w", "  namespace: team\n")),
             Catch::Contains("cluster-scoped"));
  CHECK_THAT(refusal(object("apiregistration.k8s.io/v1", "APIService", "v1beta1.metrics.k8s.io",
                            "  namespace: team\n")),
             Catch::Contains("cluster-scoped"));
  // The same kind name in a custom group is another kind.
  CHECK(parse_ok(object("example.com/v1", "ClusterRole", "r", "  namespace: team\n")).size() == 1);
}

TEST_CASE("a CustomResourceDefinition must be named <plural>.<group>", "[yaml][validate]") {
  auto crd = [](const std::string& name) {
    return "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
           "  name: " +
           name + "\nspec:\n  group: monitoring.coreos.com\n  names:\n    plural: probes\n";
  };
  CHECK(parse_ok(crd("probes.monitoring.coreos.com")).size() == 1);
  CHECK(refusal(crd("probe.monitoring.coreos.com")) ==
        "test.yaml:4: CustomResourceDefinition/probe.monitoring.coreos.com: a "
        "CustomResourceDefinition must be named <spec.names.plural>.<spec.group> "
        "(\"probes.monitoring.coreos.com\")");
  CHECK_THAT(
      refusal("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
              "metadata:\n  name: probes.example.com\nspec:\n  group: monitoring.coreos.com\n"),
      Catch::Contains("(\"<plural>.monitoring.coreos.com\")"));
}
