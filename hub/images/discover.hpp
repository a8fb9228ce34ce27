// Which container images a rendered Kubernetes object runs, and the object with them pinned
// (docs/design-images.md). Pure: JSON text in, JSON text out, one object at a time, so the
// build hooks it into its record loop without holding the bundle.
//
// Images are the `image` of every container of `containers`, `initContainers` and
// `ephemeralContainers` of a pod spec: a Pod's `spec`, a PodTemplate's `template.spec`, the
// `spec.template.spec` of any object (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, and
// custom resources shaped the same), and a CronJob's `spec.jobTemplate.spec.template.spec`.
// An `image` key anywhere else (a ConfigMap, a custom resource's own field) is not one.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace sovdev::hub::images {

struct ImageUse {
  std::string reference;  // as written, e.g. "postgres:16"
  std::string path;       // where, e.g. "spec.template.spec.initContainers[0].image"
};

// The images an object names, in document order (a reference used twice is listed twice).
// Errc::invalid when `json` is not a JSON object.
[[nodiscard]] Expected<std::vector<ImageUse>> find_images(std::string_view kind,
                                                          std::string_view json);

// The pinned reference of one as written, or nullptr to leave it as it is.
using PinLookup = std::function<const std::string*(const std::string& reference)>;

// The object with every image `pinned` knows rewritten, in the same compact form with sorted
// keys as the build's records; std::nullopt when nothing changed (keep the bytes as they are).
[[nodiscard]] Expected<std::optional<std::string>> pin_images(std::string_view kind,
                                                              std::string_view json,
                                                              const PinLookup& pinned);

}  // namespace sovdev::hub::images
