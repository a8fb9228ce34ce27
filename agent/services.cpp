#include "agent/services.hpp"

#include <algorithm>

#include "platform/kube/skim.hpp"

namespace sovdev::agent {
namespace {

std::string_view member(std::string_view object, std::string_view key) {
  auto span = kube::find_member(object, key);
  if (!span) return {};
  return object.substr(span->first, span->second - span->first);
}

// A label value is a plain string (at most 63 characters of [A-Za-z0-9._-]): anything else,
// escapes included, is not a value this reads.
std::string string_value(std::string_view json_value) {
  if (json_value.size() < 2 || json_value.front() != '"' || json_value.back() != '"') return {};
  std::string_view s = json_value.substr(1, json_value.size() - 2);
  if (s.size() > 63 || s.find('\\') != std::string_view::npos) return {};
  return std::string(s);
}

}  // namespace

ObjectService service_of(std::string_view json) {
  const std::string_view labels = member(member(json, "metadata"), "labels");
  if (labels.empty()) return {};
  ObjectService out;
  out.service = string_value(member(labels, kServiceLabel));
  out.external = string_value(member(labels, kExternalLabel)) == "true";
  return out;
}

void ServiceTally::add(const pb::ResourceRecord& record) {
  const ObjectService s = service_of(record.json());
  current_ = s.service;
  if (current_.empty()) return;
  if (!services_.count(current_) && services_.size() >= kMaxServices) {
    current_.clear();
    return;
  }
  Count& c = services_[current_];
  c.objects++;
  if (s.external) c.external++;
}

void ServiceTally::fail_current(const std::string& why) {
  if (!current_.empty()) fail(current_, why);
}

void ServiceTally::fail(const std::string& service, const std::string& why) {
  if (service.empty()) return;
  Count& c = services_[service];
  if (c.failure.empty()) c.failure = why.substr(0, 300);
}

std::vector<pb::ServiceHealth> ServiceTally::health() const {
  std::vector<pb::ServiceHealth> out;
  for (const auto& [name, c] : services_) {
    pb::ServiceHealth h;
    h.set_service(name);
    if (!c.failure.empty()) {
      h.set_state("degraded");
      h.set_message(c.failure);
    } else if (c.objects > 0 && c.external == c.objects) {
      h.set_state("external");
    } else {
      h.set_state("healthy");
      h.set_message(std::to_string(c.objects) + " objects");
    }
    out.push_back(std::move(h));
  }
  return out;
}

std::vector<pb::ServiceHealth> ServiceTally::failures_over(
    std::vector<pb::ServiceHealth> base) const {
  for (const auto& [service, c] : services_) {
    if (c.failure.empty()) continue;
    // A plain reference: clang before 16 cannot capture a structured binding in a lambda.
    const std::string& name = service;
    auto it = std::find_if(base.begin(), base.end(),
                           [&](const pb::ServiceHealth& h) { return h.service() == name; });
    if (it == base.end()) {
      it = base.insert(std::upper_bound(base.begin(), base.end(), name,
                                        [](const std::string& n, const pb::ServiceHealth& h) {
                                          return n < h.service();
                                        }),
                       pb::ServiceHealth());
      it->set_service(name);
    }
    it->set_state("degraded");
    it->set_message(c.failure);
  }
  return base;
}

}  // namespace sovdev::agent
