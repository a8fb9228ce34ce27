// Documents, Lists, aliases and syntax errors: what parse_manifests makes of a file's text.
#include <string>

#include <catch2/catch.hpp>

#include "tests/yaml/helpers.hpp"

using sovdev::Errc;
using sovdev::yaml::Object;
using sovdev::yaml::ParseOptions;
using sovdev::yaml::test::parse_error;
using sovdev::yaml::test::parse_ok;

TEST_CASE("each document becomes one object, in order, with its source line", "[yaml][parse]") {
  auto objects = parse_ok(
      "# header comment\n"
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n  namespace: demo\n"
      "---\n"
      "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: second\n");
  REQUIRE(objects.size() == 2);
  CHECK(objects[0].api_version == "v1");
  CHECK(objects[0].kind == "ConfigMap");
  CHECK(objects[0].namespace_ == "demo");
  CHECK(objects[0].name == "first");
  CHECK(objects[0].source == "test.yaml:2");
  CHECK(objects[0].group().empty());
  CHECK(objects[1].kind == "Deployment");
  CHECK(objects[1].namespace_.empty());
  CHECK(objects[1].source == "test.yaml:8");
  CHECK(objects[1].group() == "apps");
}

TEST_CASE("empty and comment-only documents are skipped", "[yaml][parse]") {
  CHECK(parse_ok("").empty());
  CHECK(parse_ok("# nothing here\n").empty());
  CHECK(parse_ok("---\n---\n").empty());
  auto objects = parse_ok(
      "---\n# only a comment\n---\n\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n"
      "---\n~\n---\n...\n");
  REQUIRE(objects.size() == 1);
  CHECK(objects[0].kind == "Secret");
  CHECK(objects[0].source == "test.yaml:6");
}

TEST_CASE("JSON is compact with keys sorted", "[yaml][parse]") {
  auto objects = parse_ok(
      "metadata:\n  name: a\n  labels: {b: \"1\", a: x}\nkind: ConfigMap\napiVersion: v1\n"
      "data:\n  z: |\n    line \"quoted\"\n");
  REQUIRE(objects.size() == 1);
  CHECK(objects[0].json ==
        R"({"apiVersion":"v1","data":{"z":"line \"quoted\"\n"},"kind":"ConfigMap",)"
        R"("metadata":{"labels":{"a":"x","b":"1"},"name":"a"}})");
}

TEST_CASE("a List is expanded into its items, each with its own source", "[yaml][parse]") {
  auto objects = parse_ok(
      "apiVersion: v1\nkind: List\nitems:\n"
      "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: a\n"
      "- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: b\n"
      "---\n"
      "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleList\nitems:\n"
      "- apiVersion: rbac.authorization.k8s.io/v1\n  kind: Role\n  metadata:\n    name: r\n"
      "    namespace: team\n");
  REQUIRE(objects.size() == 3);
  CHECK(objects[0].kind == "ConfigMap");
  CHECK(objects[0].source == "test.yaml:4");
  CHECK(objects[1].kind == "Secret");
  CHECK(objects[1].source == "test.yaml:8");
  CHECK(objects[2].kind == "Role");
  CHECK(objects[2].namespace_ == "team");
  CHECK(objects[2].json.find("items") == std::string::npos);
}

TEST_CASE("a List with no items yields nothing", "[yaml][parse]") {
  CHECK(parse_ok("apiVersion: v1\nkind: List\nitems: []\n").empty());
  CHECK(parse_ok("apiVersion: v1\nkind: ConfigMapList\nitems:\n").empty());
}

TEST_CASE("a kind ending in List without items is an ordinary object", "[yaml][parse]") {
  auto objects = parse_ok("apiVersion: example.com/v1\nkind: AllowList\nmetadata:\n  name: a\n");
  REQUIRE(objects.size() == 1);
  CHECK(objects[0].kind == "AllowList");
}

TEST_CASE("a List item that is not an object is refused at its line", "[yaml][parse]") {
  auto error = parse_error("apiVersion: v1\nkind: List\nitems:\n- just a string\n");
  CHECK(error.message == "test.yaml:4: a Kubernetes object must be a map, not a string");
  auto nested = parse_error(
      "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n"
      "  kind: List\n  items: []\n");
  CHECK(nested.message == "test.yaml:4: a List inside a List is not supported");
}

TEST_CASE("a YAML syntax error names the file, line and column", "[yaml][parse]") {
  auto error = parse_error("apiVersion: v1\nkind: ConfigMap\ndata: [1, 2\nmetadata: {}\n");
  CHECK(error.code == Errc::invalid);
  CHECK_THAT(error.message, Catch::Matches(R"(test\.yaml:\d+:\d+: .+)"));
  CHECK_THAT(error.message, Catch::Contains("end of sequence flow not found"));
  auto tab = parse_error("a: 1\n b: 2\n");
  CHECK_THAT(tab.message, Catch::StartsWith("test.yaml:2:"));
}

TEST_CASE("a syntax error in a later document fails the whole file", "[yaml][parse]") {
  auto error = parse_error(
      "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n---\n"
      "key: \"unterminated\n");
  CHECK_THAT(error.message, Catch::StartsWith("test.yaml:6:"));
}

TEST_CASE("an alias bomb is refused before it fills memory", "[yaml][parse]") {
  std::string text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n";
  text += "  a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (int i = 1; i < 10; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    text += "  a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + prev;
    for (int j = 1; j < 9; ++j) text += "," + prev;
    text += "]\n";
  }
  auto error = parse_error(text);  // 9^10 strings if expanded: about 17 GB of JSON
  CHECK(error.code == Errc::invalid);
  CHECK_THAT(error.message, Catch::StartsWith("test.yaml:1: object is larger than 2097152"));
}

TEST_CASE("an alias that contains itself is refused, not followed forever", "[yaml][parse]") {
  auto error = parse_error(
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
      "data: &loop [*loop]\n");
  CHECK_THAT(error.message, Catch::StartsWith("test.yaml:5: nested deeper than"));
}

TEST_CASE("small aliases are expanded in place", "[yaml][parse]") {
  auto objects = parse_ok(
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
      "  labels: &l {app: x}\n  annotations: *l\n");
  REQUIRE(objects.size() == 1);
  CHECK(objects[0].json ==
        R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"annotations":{"app":"x"},)"
        R"("labels":{"app":"x"},"name":"c"}})");
}

TEST_CASE("List items aliasing one big anchor are stopped by the per-file total", "[yaml][parse]") {
  std::string text = "apiVersion: v1\nkind: List\nitems:\n";
  text += "- &big {apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {k: \"" +
          std::string(400, 'x') + "\"}}\n";
  for (int i = 0; i < 20; ++i) text += "- *big\n";
  ParseOptions options;
  options.max_object_bytes = 1000;
  options.max_total_bytes = 4000;
  auto error = parse_error(text, options);
  CHECK(error.code == Errc::invalid);
  CHECK_THAT(error.message, Catch::Contains("together"));
  // Far below the limit, the same shape parses (the duplicates are order_objects' business).
  options.max_total_bytes = 100000;
  CHECK(parse_ok(text, options).size() == 21);
}

TEST_CASE("an object larger than max_object_bytes is refused", "[yaml][parse]") {
  std::string text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: " +
                     std::string(2000, 'x') + "\n";
  ParseOptions options;
  options.max_object_bytes = 1000;
  auto error = parse_error(text, options);
  CHECK_THAT(error.message, Catch::StartsWith("test.yaml:1: object is larger than 1000"));
  options.max_object_bytes = 3000;
  CHECK(parse_ok(text, options).size() == 1);
}

TEST_CASE("the exact JSON size decides at the limit, escapes included", "[yaml][parse]") {
  // 600 quotes count 600 while converting but dump as 1200 bytes.
  std::string text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: '" +
                     std::string(600, '"') + "'\n";
  ParseOptions options;
  options.max_object_bytes = 1000;
  auto error = parse_error(text, options);
  CHECK_THAT(error.message, Catch::StartsWith("test.yaml:1: ConfigMap/c: object is 1"));
}

TEST_CASE("a repeated key keeps the last value, as kubectl does", "[yaml][parse]") {
  auto objects = parse_ok(
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
      "data:\n  k: first\n  k: second\n");
  REQUIRE(objects.size() == 1);
  CHECK_THAT(objects[0].json, Catch::Contains(R"("data":{"k":"second"})"));
}

TEST_CASE("merge keys are refused with a clear message", "[yaml][parse]") {
  auto error = parse_error(
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
      "  labels: &l {a: b}\n  annotations:\n    <<: *l\n");
  CHECK(error.message == "test.yaml:7: merge keys (<<) are not supported: write the keys out");
}

TEST_CASE("YAML nested deeper than the parser allows is refused, not a crash", "[yaml][parse]") {
  std::string text =
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata: " + std::string(5000, '[') +
      std::string(5000, ']') + "\n";
  auto error = parse_error(text);
  CHECK(error.code == Errc::invalid);
  CHECK_THAT(error.message, Catch::StartsWith("test.yaml:5:"));
}

TEST_CASE("invalid UTF-8 becomes U+FFFD instead of an exception", "[yaml][parse]") {
  auto objects = parse_ok(
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
      "data:\n  k: \"a\xff b\"\n");
  REQUIRE(objects.size() == 1);
  CHECK_THAT(objects[0].json, Catch::Contains("\"a\xef\xbf\xbd b\""));
}

TEST_CASE("CRLF line endings and a UTF-8 byte order mark parse like plain LF", "[yaml][parse]") {
  auto objects = parse_ok(
      "\xef\xbb\xbf"
      "apiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: c\r\ndata:\r\n  k: |\r\n"
      "    a\r\n    b\r\n---\r\napiVersion: v1\r\nkind: Secret\r\nmetadata:\r\n  name: s\r\n");
  REQUIRE(objects.size() == 2);
  CHECK(objects[0].json ==
        R"({"apiVersion":"v1","data":{"k":"a\nb\n"},"kind":"ConfigMap","metadata":{"name":"c"}})");
  CHECK(objects[1].source == "test.yaml:10");
}

TEST_CASE("a stray comma that makes yaml-cpp 0.7 loop forever is refused with its line",
          "[yaml][parse]") {
  // jbeder/yaml-cpp#1040: LoadAll allocates documents without end on this input.
  auto r = sovdev::yaml::parse_manifests("stray.yaml", "apiVersion: v1\n---\n,\n");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == sovdev::Errc::invalid);
  CHECK_THAT(r.error().message, Catch::Contains("stray.yaml:"));
}
