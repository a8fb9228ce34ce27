#include "bundles/yaml/validate.hpp"

#include <initializer_list>
#include <span>
#include <string>

#include "bundles/yaml/convert.hpp"
#include "bundles/yaml/names.hpp"

namespace sovdev::yaml {
namespace {

constexpr std::string_view kRbacGroup = "rbac.authorization.k8s.io";
constexpr std::string_view kAdmissionGroup = "admissionregistration.k8s.io";

struct GroupKind {
  std::string_view group;
  std::string_view kind;
};

// Built-in kinds that live outside namespaces. A custom resource of the same kind name in another
// group is not one of them (Knative's serving.knative.dev Service is namespaced, like core's).
constexpr GroupKind kClusterScoped[] = {
    {"", "Namespace"},
    {"", "PersistentVolume"},
    {"", "Node"},
    {"apiextensions.k8s.io", "CustomResourceDefinition"},
    {"apiregistration.k8s.io", "APIService"},
    {kRbacGroup, "ClusterRole"},
    {kRbacGroup, "ClusterRoleBinding"},
    {"storage.k8s.io", "StorageClass"},
    {"storage.k8s.io", "CSIDriver"},
    {"storage.k8s.io", "CSINode"},
    {"storage.k8s.io", "VolumeAttachment"},
    {"scheduling.k8s.io", "PriorityClass"},
    {"networking.k8s.io", "IngressClass"},
    {"node.k8s.io", "RuntimeClass"},
    {"policy", "PodSecurityPolicy"},
    {"certificates.k8s.io", "CertificateSigningRequest"},
    {"flowcontrol.apiserver.k8s.io", "FlowSchema"},
    {"flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"},
    {kAdmissionGroup, "MutatingWebhookConfiguration"},
    {kAdmissionGroup, "ValidatingWebhookConfiguration"},
    {kAdmissionGroup, "ValidatingAdmissionPolicy"},
    {kAdmissionGroup, "ValidatingAdmissionPolicyBinding"},
    {kAdmissionGroup, "MutatingAdmissionPolicy"},
    {kAdmissionGroup, "MutatingAdmissionPolicyBinding"},
};

}  // namespace

bool is_cluster_scoped(std::string_view group, std::string_view kind) {
  for (const GroupKind& gk : kClusterScoped) {
    if (gk.group == group && gk.kind == kind) return true;
  }
  return false;
}

namespace detail {
namespace {

constexpr std::string_view kLabelRule =
    "an RFC 1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a "
    "letter or digit";

struct NameRule {
  bool (*valid)(std::string_view);
  std::string_view what;
};

// The API server's rule for metadata.name of each kind (ValidateObjectMeta's name function).
NameRule name_rule(std::string_view group, std::string_view kind) {
  if (group.empty() && kind == "Namespace") return {is_dns1123_label, kLabelRule};
  if (group.empty() && kind == "Service") {
    return {is_dns1035_label,
            "an RFC 1035 label: at most 63 lowercase letters, digits and '-', starting with a "
            "letter and ending with a letter or digit"};
  }
  if (group == kRbacGroup && (kind == "Role" || kind == "ClusterRole" || kind == "RoleBinding" ||
                              kind == "ClusterRoleBinding")) {
    return {is_path_segment_name, "a path segment: not empty, \".\" or \"..\", without '/' or '%'"};
  }
  return {is_dns1123_subdomain,
          "an RFC 1123 subdomain: at most 253 lowercase letters, digits, '-' and '.', each "
          "dot-separated part starting and ending with a letter or digit"};
}

std::string_view json_type(const nlohmann::json& value) {
  if (value.is_object()) return "map";
  if (value.is_array()) return "sequence";
  if (value.is_boolean()) return "boolean";
  if (value.is_number()) return "number";
  if (value.is_null()) return "null";
  return "string";
}

// YAML 1.1 turns `name: 0123` or `namespace: no` into a number or a boolean: quoting fixes that.
const char* quote_hint(const nlohmann::json& value) {
  return value.is_number() || value.is_boolean() ? ": quote it" : "";
}

const nlohmann::json* member(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string string_or_empty(const nlohmann::json* value) {
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

// The mark of the deepest key of `keys` present in the YAML tree, or of the tree itself.
YAML::Mark mark_of(const YAML::Node& node, std::span<const std::string_view> keys,
                   const YAML::Mark& fallback) {
  if (keys.empty()) return fallback;
  auto found = find_key(node, keys.front());
  if (!found) return fallback;
  return mark_of(found->second, keys.subspan(1), found->first.Mark());
}

class Checker {
 public:
  Checker(const YAML::Node& node, std::string_view path) : node_(node), path_(path) {}

  void set_subject(const std::string& kind, const std::string& name) {
    subject_ = kind.empty() ? "" : name.empty() ? kind : kind + "/" + name;
  }

  Error fail(std::initializer_list<std::string_view> keys, const std::string& what) const {
    YAML::Mark mark = mark_of(node_, std::span(keys.begin(), keys.size()), node_.Mark());
    std::string prefix = where(path_, mark) + ": ";
    if (!subject_.empty()) prefix += subject_ + ": ";
    return make_error(Errc::invalid, prefix + what);
  }

 private:
  const YAML::Node& node_;
  std::string_view path_;
  std::string subject_;
};

bool is_api_version(std::string_view v) {
  size_t slash = v.find('/');
  if (slash == std::string_view::npos) return !v.empty();
  return slash > 0 && slash + 1 < v.size() && v.find('/', slash + 1) == std::string_view::npos;
}

Status check_name(const Checker& c, const Object& o) {
  NameRule rule = name_rule(o.group(), o.kind);
  if (!rule.valid(o.name)) {
    return c.fail({"metadata", "name"}, "metadata.name \"" + o.name + "\" is not valid for a " +
                                            o.kind + ": it must be " + std::string(rule.what));
  }
  return {};
}

Status check_namespace(const Checker& c, const Object& o) {
  if (o.namespace_.empty()) return {};
  if (is_cluster_scoped(o.group(), o.kind)) {
    return c.fail({"metadata", "namespace"},
                  o.kind + " is cluster-scoped: remove metadata.namespace");
  }
  if (!is_dns1123_label(o.namespace_)) {
    return c.fail({"metadata", "namespace"}, "metadata.namespace \"" + o.namespace_ +
                                                 "\" is not valid: it must be " +
                                                 std::string(kLabelRule));
  }
  return {};
}

// The API server insists on <spec.names.plural>.<spec.group>; catching it here names the file.
Status check_crd_name(const Checker& c, const Object& o, const nlohmann::json& json) {
  if (o.group() != "apiextensions.k8s.io" || o.kind != "CustomResourceDefinition") return {};
  const nlohmann::json* spec = member(json, "spec");
  std::string group = spec ? string_or_empty(member(*spec, "group")) : "";
  const nlohmann::json* names = spec ? member(*spec, "names") : nullptr;
  std::string plural = names ? string_or_empty(member(*names, "plural")) : "";
  bool ok = true;
  if (!group.empty()) ok = o.name.ends_with("." + group);
  if (!plural.empty()) ok = ok && o.name.starts_with(plural + ".");
  if (!group.empty() && !plural.empty()) ok = o.name == plural + "." + group;
  if (ok) return {};
  return c.fail({"metadata", "name"},
                "a CustomResourceDefinition must be named <spec.names.plural>.<spec.group> (\"" +
                    (plural.empty() ? "<plural>" : plural) + "." +
                    (group.empty() ? "<group>" : group) + "\")");
}

}  // namespace

Expected<Object> make_object(const YAML::Node& node, const nlohmann::json& json,
                             std::string_view path) {
  Checker c(node, path);
  if (!json.is_object()) {
    return c.fail({}, "a Kubernetes object must be a map, not a " + std::string(json_type(json)));
  }
  const nlohmann::json* api_version = member(json, "apiVersion");
  const nlohmann::json* kind = member(json, "kind");
  const nlohmann::json* metadata = member(json, "metadata");
  const nlohmann::json* name = metadata ? member(*metadata, "name") : nullptr;
  c.set_subject(string_or_empty(kind), string_or_empty(name));

  if (api_version == nullptr) return c.fail({}, "apiVersion is missing");
  if (string_or_empty(api_version).empty()) {
    return c.fail({"apiVersion"}, "apiVersion must be a non-empty string");
  }
  if (!is_api_version(string_or_empty(api_version))) {
    return c.fail({"apiVersion"}, "apiVersion \"" + string_or_empty(api_version) +
                                      "\" must be <version> or <group>/<version>");
  }
  if (kind == nullptr) return c.fail({}, "kind is missing");
  if (string_or_empty(kind).empty()) return c.fail({"kind"}, "kind must be a non-empty string");
  if (metadata == nullptr) return c.fail({}, "metadata is missing");
  if (!metadata->is_object()) {
    return c.fail({"metadata"},
                  "metadata must be a map, not a " + std::string(json_type(*metadata)));
  }
  if (name == nullptr || name->is_null() ||
      (name->is_string() && name->get_ref<const std::string&>().empty())) {
    if (member(*metadata, "generateName") != nullptr) {
      return c.fail({"metadata", "generateName"},
                    "metadata.generateName without metadata.name is not supported: server-side "
                    "apply needs a name");
    }
    return c.fail({"metadata"}, "metadata.name is missing");
  }
  if (!name->is_string()) {
    return c.fail({"metadata", "name"}, "metadata.name must be a string, not a " +
                                            std::string(json_type(*name)) + quote_hint(*name));
  }
  const nlohmann::json* ns = member(*metadata, "namespace");
  if (ns != nullptr && !ns->is_null() && !ns->is_string()) {
    return c.fail({"metadata", "namespace"}, "metadata.namespace must be a string, not a " +
                                                 std::string(json_type(*ns)) + quote_hint(*ns));
  }

  Object o;
  o.api_version = string_or_empty(api_version);
  o.kind = string_or_empty(kind);
  o.name = string_or_empty(name);
  o.namespace_ = string_or_empty(ns);
  SOVDEV_TRY(check_name(c, o));
  SOVDEV_TRY(check_namespace(c, o));
  SOVDEV_TRY(check_crd_name(c, o, json));
  // Invalid UTF-8 becomes U+FFFD, as Go's encoding/json does, instead of throwing.
  o.json = json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  o.source = where(path, node.Mark());
  return o;
}

}  // namespace detail
}  // namespace sovdev::yaml
