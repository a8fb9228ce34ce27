#include "bundles/yaml/objects.hpp"

#include <exception>
#include <new>
#include <optional>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "bundles/yaml/convert.hpp"
#include "bundles/yaml/scalar.hpp"
#include "bundles/yaml/validate.hpp"

namespace sovdev::yaml {
namespace {

// The `items` of a List document (kind List, ConfigMapList, RoleList ...), as kubectl expands
// them; nullopt for any other document.
std::optional<YAML::Node> list_items(const YAML::Node& doc) {
  auto kind = detail::find_key(doc, "kind");
  if (!kind || !kind->second.IsScalar()) return std::nullopt;
  nlohmann::json kind_value;
  if (!detail::resolve_scalar(kind->second.Tag(), kind->second.Scalar(), kind_value) ||
      !kind_value.is_string() || !kind_value.get_ref<const std::string&>().ends_with("List")) {
    return std::nullopt;
  }
  auto items = detail::find_key(doc, "items");
  if (!items || !(items->second.IsSequence() || items->second.IsNull())) return std::nullopt;
  return items->second;
}

class FileParser {
 public:
  FileParser(std::string_view path, const ParseOptions& options) : path_(path), options_(options) {}

  Status add_document(const YAML::Node& doc) {
    if (doc.IsNull()) return {};  // empty or comment-only
    std::optional<YAML::Node> items = list_items(doc);
    if (!items) return add_object(doc);
    if (items->IsNull()) return {};
    for (const auto& item : *items) {
      if (list_items(item)) {
        return make_error(Errc::invalid, detail::where(path_, item.Mark()) +
                                             ": a List inside a List is not supported");
      }
      SOVDEV_TRY(add_object(item));
    }
    return {};
  }

  std::vector<Object> take() && { return std::move(objects_); }

 private:
  Status add_object(const YAML::Node& node) {
    nlohmann::json json;
    SOVDEV_TRY(detail::to_json(node, path_, options_.max_object_bytes, json));
    SOVDEV_ASSIGN(Object object, detail::make_object(node, json, path_));
    std::string at = detail::where(path_, node.Mark()) + ": " + object.kind + "/" + object.name;
    if (object.json.size() > options_.max_object_bytes) {
      return make_error(Errc::invalid, at + ": object is " + std::to_string(object.json.size()) +
                                           " bytes as JSON, more than the " +
                                           std::to_string(options_.max_object_bytes) + " allowed");
    }
    total_bytes_ += object.json.size();
    if (total_bytes_ > options_.max_total_bytes) {
      return make_error(Errc::invalid, at + ": the objects of this file pass " +
                                           std::to_string(options_.max_total_bytes) +
                                           " bytes as JSON together (an alias bomb?)");
    }
    objects_.push_back(std::move(object));
    return {};
  }

  std::string_view path_;
  const ParseOptions& options_;
  size_t total_bytes_ = 0;
  std::vector<Object> objects_;
};

std::string at_mark(std::string_view path, const YAML::Mark& mark) {
  if (mark.is_null()) return std::string(path);
  return detail::where(path, mark) + ":" + std::to_string(mark.column + 1);
}

// yaml-cpp 0.7 loops forever, allocating a null document per turn, on a stray ',' at document
// level (jbeder/yaml-cpp#1040; fixed upstream by PR #1319, after 0.8.0). LoadAll cannot be
// bounded from outside, so a pass over the events first refuses a stream whose next document
// starts where the previous one did.
class ProgressCheck : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    stuck_ = started_ && mark.pos <= last_.pos;
    started_ = true;
    last_ = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
  bool stuck() const { return stuck_; }
  const YAML::Mark& mark() const { return last_; }

 private:
  bool started_ = false;
  bool stuck_ = false;
  YAML::Mark last_ = YAML::Mark::null_mark();
};

Status check_progress(std::string_view path, const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  ProgressCheck check;
  while (parser.HandleNextDocument(check)) {
    if (check.stuck()) {
      return make_error(Errc::invalid, detail::where(path, check.mark()) +
                                           ": unexpected character here (a stray ',' or bracket?)");
    }
  }
  return {};
}

}  // namespace

std::string Object::group() const {
  size_t slash = api_version.find('/');
  return slash == std::string::npos ? std::string() : api_version.substr(0, slash);
}

Expected<std::vector<Object>> parse_manifests(std::string_view path, std::string_view text,
                                              const ParseOptions& options) {
  // yaml-cpp and nlohmann report by exception; none may leave this library.
  try {
    const std::string input(text);
    SOVDEV_TRY(check_progress(path, input));
    std::vector<YAML::Node> docs = YAML::LoadAll(input);
    FileParser parser(path, options);
    for (const YAML::Node& doc : docs) SOVDEV_TRY(parser.add_document(doc));
    return std::move(parser).take();
  } catch (const YAML::Exception& e) {  // ParserException, and DeepRecursion past 2000 levels
    return make_error(Errc::invalid, at_mark(path, e.mark) + ": " + e.msg);
  } catch (const nlohmann::json::exception& e) {
    return make_error(Errc::internal, std::string(path) + ": JSON: " + e.what());
  } catch (const std::bad_alloc&) {
    return make_error(Errc::too_large, std::string(path) + ": out of memory while parsing");
  } catch (const std::exception& e) {
    return make_error(Errc::internal, std::string(path) + ": " + e.what());
  }
}

}  // namespace sovdev::yaml
