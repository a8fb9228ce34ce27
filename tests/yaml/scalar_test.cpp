// Plain scalars must become the JSON kubectl would send (go-yaml v2 + sigs.k8s.io/yaml).
#include <catch2/catch.hpp>

#include "tests/yaml/helpers.hpp"

using sovdev::yaml::test::parse_error;
using sovdev::yaml::test::spec_of;

namespace {

// The JSON text a single `v: <yaml>` value becomes.
std::string value_json(const std::string& yaml) {
  return spec_of("  v: " + yaml + "\n").at("v").dump();
}

}  // namespace

TEST_CASE("plain scalars resolve as kubectl's go-yaml v2 resolves them", "[yaml][scalar]") {
  struct Row {
    const char* yaml;
    const char* json;
  };
  const Row rows[] = {
      // YAML 1.1 booleans, which YAML 1.2 parsers would leave as strings.
      {"yes", "true"},
      {"Yes", "true"},
      {"YES", "true"},
      {"on", "true"},
      {"ON", "true"},
      {"y", "true"},
      {"Y", "true"},
      {"true", "true"},
      {"True", "true"},
      {"no", "false"},
      {"off", "false"},
      {"Off", "false"},
      {"n", "false"},
      {"FALSE", "false"},
      {"yES", "\"yES\""},
      {"tRUE", "\"tRUE\""},
      // Nulls.
      {"~", "null"},
      {"null", "null"},
      {"Null", "null"},
      {"NULL", "null"},
      {"", "null"},
      {"nULL", "\"nULL\""},
      // Integers: hex, octal with a leading 0 or 0o, binary, signs, underscores.
      {"0x1F", "31"},
      {"0X1f", "31"},
      {"012", "10"},
      {"-012", "-10"},
      {"0o17", "15"},
      {"0b101", "5"},
      {"-0x1F", "-31"},
      {"+12", "12"},
      {"1_000", "1000"},
      {"0", "0"},
      {"9223372036854775807", "9223372036854775807"},
      {"-9223372036854775808", "-9223372036854775808"},
      {"9223372036854775808", "9223372036854775808"},  // past int64: uint64
      // Floats; whole ones print as integers, as Go's encoding/json prints them.
      {"1e3", "1000"},
      {"3.0", "3"},
      {"1.5", "1.5"},
      {".5", "0.5"},
      {"-.5e1", "-5"},
      {"08", "8"},  // not octal, so go-yaml reads a float
      {"1e-400", "0"},
      // Strings: anything else, including what YAML 1.1 timestamps and sexagesimals look like.
      {"1e400", "\"1e400\""},
      {"0xFFFFFFFFFFFFFFFFFF", "\"0xFFFFFFFFFFFFFFFFFF\""},
      {"0x", "\"0x\""},
      {"12:30", "\"12:30\""},
      {"2024-01-01", "\"2024-01-01\""},
      {"0.32.1", "\"0.32.1\""},
      {"1.2.3", "\"1.2.3\""},
      {"-x", "\"-x\""},
      {".", "\".\""},
      {"_1", "\"_1\""},
      {"1_", "1"},
      {"+", "\"+\""},
      {"<<", "\"<<\""},
      {"inf", "\"inf\""},
      {"v1.2", "\"v1.2\""},
  };
  for (const Row& row : rows) {
    INFO("yaml: " << row.yaml);
    CHECK(value_json(row.yaml) == row.json);
  }
}

TEST_CASE("quoted, block and !!str scalars stay strings", "[yaml][scalar]") {
  CHECK(value_json("\"012\"") == "\"012\"");
  CHECK(value_json("'1e3'") == "\"1e3\"");
  CHECK(value_json("\"yes\"") == "\"yes\"");
  CHECK(value_json("'~'") == "\"~\"");
  CHECK(value_json("\"\"") == "\"\"");
  CHECK(value_json("!!str 12") == "\"12\"");
  CHECK(value_json("!!str") == "\"\"");
  CHECK(value_json("! 12") == "\"12\"");
  CHECK(spec_of("  v: |\n    123\n").at("v") == "123\n");
  CHECK(spec_of("  v: >-\n    true\n").at("v") == "true");
}

TEST_CASE("explicit !!int, !!bool, !!float and !!null tags are honoured", "[yaml][scalar]") {
  CHECK(value_json("!!int \"12\"") == "12");
  CHECK(value_json("!!int 0x10") == "16");
  CHECK(value_json("!!bool \"yes\"") == "true");
  CHECK(value_json("!!float \"1.5\"") == "1.5");
  CHECK(value_json("!!float 2") == "2");
  CHECK(value_json("!!null ''") == "null");
  CHECK(value_json("!!timestamp 2024-01-01") == "\"2024-01-01\"");
  CHECK(value_json("!local 12") == "\"12\"");  // an unknown tag keeps the text, as in go-yaml
}

TEST_CASE("a tag that disagrees with its scalar is refused with the line", "[yaml][scalar]") {
  auto error = parse_error(
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n"
      "  a: !!int abc\n");
  CHECK(error.code == sovdev::Errc::invalid);
  CHECK(error.message == "test.yaml:6: cannot decode !!str `abc` as a !!int");
  auto bool_error = parse_error("apiVersion: v1\nkind: X\nmetadata:\n  name: c\nv: !!bool 1\n");
  CHECK(bool_error.message == "test.yaml:5: cannot decode !!int `1` as a !!bool");
}

TEST_CASE(".inf and .nan are refused with their line, since JSON cannot hold them",
          "[yaml][scalar]") {
  for (const char* value : {".inf", "-.Inf", ".NaN", "!!float .inf"}) {
    INFO(value);
    auto error = parse_error(std::string("apiVersion: v1\nkind: X\nmetadata:\n  name: c\n"
                                         "spec:\n  limit: ") +
                             value + "\n");
    CHECK(error.code == sovdev::Errc::invalid);
    CHECK_THAT(error.message, Catch::StartsWith("test.yaml:6: `"));
    CHECK_THAT(error.message, Catch::Contains("JSON cannot hold it"));
  }
}

TEST_CASE("!!binary scalars are refused", "[yaml][scalar]") {
  auto error = parse_error("apiVersion: v1\nkind: X\nmetadata:\n  name: c\nv: !!binary aGk=\n");
  CHECK_THAT(error.message, Catch::StartsWith("test.yaml:5: !!binary"));
}

TEST_CASE("map keys become the strings kubectl makes of them", "[yaml][scalar]") {
  auto spec = spec_of(
      "  yes: a\n  off: b\n  0x1F: c\n  012: d\n  1.5: e\n  1e6: f\n  \"on\": g\n  plain: h\n"
      "  '<<': i\n  !!str 7: j\n");
  CHECK(spec.dump() ==
        R"({"1.5":"e","10":"d","1e+06":"f","31":"c","7":"j","<<":"i","false":"b","on":"g",)"
        R"("plain":"h","true":"a"})");
}

TEST_CASE("null and non-scalar map keys are refused with their line", "[yaml][scalar]") {
  const char* head = "apiVersion: v1\nkind: X\nmetadata:\n  name: c\nspec:\n";
  auto null_key = parse_error(std::string(head) + "  ~: a\n");
  CHECK_THAT(null_key.message,
             Catch::StartsWith("test.yaml:6: a map key must be a string, not null: quote it"));
  auto seq_key = parse_error(std::string(head) + "  ? [a, b]\n  : c\n");
  CHECK_THAT(seq_key.message, Catch::StartsWith("test.yaml:6:"));
  CHECK_THAT(seq_key.message, Catch::Contains("map key must be a string, not a sequence"));
  auto big_key = parse_error(std::string(head) + "  18446744073709551615: a\n");
  CHECK_THAT(big_key.message, Catch::Contains("too large an integer"));
}
