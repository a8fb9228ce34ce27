// The name syntaxes the Kubernetes API server enforces (k8s.io/apimachinery validation).
#pragma once

#include <string_view>

namespace sovdev::yaml {

// At most 63 of [a-z0-9-], starting and ending with [a-z0-9]: Namespace names, namespaces.
bool is_dns1123_label(std::string_view name);
// Like an RFC 1123 label but starting with a letter: Service names.
bool is_dns1035_label(std::string_view name);
// At most 253 characters of dot-separated RFC 1123 labels: most object names.
bool is_dns1123_subdomain(std::string_view name);
// Anything usable as one URL path segment: not "." or "..", no '/' or '%'. RBAC object names,
// which may hold ':' (system:aggregated-metrics-reader).
bool is_path_segment_name(std::string_view name);

}  // namespace sovdev::yaml
