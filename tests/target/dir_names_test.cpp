// The dir target's file names: readable, valid for k3s, stable, and never shared by two objects.
#include <set>

#include "tests/target/helpers.hpp"

using namespace sovdev;
using namespace sovdev::target;
using namespace sovdev::target::test;

namespace {

bool alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// The basename k3s turns into an Addon name: at most 63 characters of dot-separated RFC 1123
// labels (lower-case letters, digits and '-', starting and ending with a letter or digit).
bool valid_addon_name(const std::string& file) {
  if (file.size() <= 5 || file.size() - 5 > 63 || file.substr(file.size() - 5) != ".json") {
    return false;
  }
  const std::string base = file.substr(0, file.size() - 5);
  size_t start = 0;
  for (;;) {
    const size_t dot = base.find('.', start);
    const std::string label = base.substr(start, dot - start);
    if (label.empty() || !alnum(label.front()) || !alnum(label.back())) return false;
    for (const char c : label) {
      if (!alnum(c) && c != '-') return false;
    }
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

// "PREFIX" followed by 12 lower-case hex digits and ".json".
bool named(const std::string& file, const std::string& prefix) {
  if (file.size() != prefix.size() + 12 + 5 || file.rfind(prefix, 0) != 0) return false;
  for (size_t i = prefix.size(); i < prefix.size() + 12; ++i) {
    if (!((file[i] >= '0' && file[i] <= '9') || (file[i] >= 'a' && file[i] <= 'f'))) return false;
  }
  return file.substr(prefix.size() + 12) == ".json";
}

}  // namespace

TEST_CASE("a file is named stack.kind.namespace.name with a hash of the identity") {
  const std::string file =
      object_file_name("sovdev", record("apps/v1", "Deployment", "web", "api"));
  CHECK(named(file, "sovdev.deployment.web.api-"));
  CHECK(valid_addon_name(file));
}

TEST_CASE("a cluster-scoped object's file name leaves the namespace out") {
  const std::string file = object_file_name("sovdev", record("v1", "Namespace", "", "web"));
  CHECK(named(file, "sovdev.namespace.web-"));
}

TEST_CASE("the same object gets the same file name every time") {
  CHECK(object_file_name("s", config_map("a", "1")) == object_file_name("s", config_map("a", "2")));
  // Moving between versions of one API group keeps the file.
  CHECK(object_file_name("s", record("batch/v1beta1", "CronJob", "n", "c")) ==
        object_file_name("s", record("batch/v1", "CronJob", "n", "c")));
}

TEST_CASE("invalid characters are replaced and the result is a valid Addon name") {
  const std::string file = object_file_name(
      "edge_stack",
      record("rbac.authorization.k8s.io/v1", "ClusterRole", "", "system:auth-reader"));
  CHECK(named(file, "edge-stack.clusterrole.system-auth-reader-"));
  CHECK(valid_addon_name(file));
  CHECK(valid_addon_name(object_file_name("--", record("v1", "ConfigMap", "", "...__"))));
}

TEST_CASE("names that would collide after cleaning get distinct files") {
  const std::vector<pb::ResourceRecord> lookalikes = {
      config_map("my-app"),
      config_map("my.app"),
      record("v1", "ConfigMap", "default", "my_app"),
      record("v1", "ConfigMap", "default", "My-App"),
      record("v1", "ConfigMap", "", "default.my-app"),
      record("v1", "ConfigMap", "default-my", "app"),
      record("v1", "Configmap", "default", "my-app"),
      record("example.com/v1", "ConfigMap", "default", "my-app"),
      record("other.example/v1", "ConfigMap", "default", "my-app"),
  };
  std::set<std::string> files;
  for (const auto& o : lookalikes) {
    const std::string file = object_file_name("s", o);
    CHECK(valid_addon_name(file));
    files.insert(file);
  }
  CHECK(files.size() == lookalikes.size());
  CHECK(object_file_name("a-b", config_map("x")) != object_file_name("a_b", config_map("x")));
}

TEST_CASE("long names are shortened to 63 characters and stay distinct") {
  const std::string common(200, 'x');
  const std::string a = object_file_name("s", config_map(common + "-a"));
  const std::string b = object_file_name("s", config_map(common + "-b"));
  CHECK(a != b);
  CHECK(a.size() == 63 + 5);
  CHECK(valid_addon_name(a));
  CHECK(valid_addon_name(b));
  // A cut that lands on a separator must not leave "-" or "." before the hash.
  for (size_t n = 30; n < 60; ++n) {
    CHECK(valid_addon_name(object_file_name("s", config_map(std::string(n, 'y') + ".z.z.z.z"))));
  }
}
