// The streaming JSON member filter and the member finder the kube target relies on to keep
// large objects out of memory.
#include <catch2/catch.hpp>

#include "platform/kube/skim.hpp"

namespace sovdev::kube {
namespace {

std::string skim(const std::string& text, std::set<std::string> keep, size_t piece) {
  JsonSkimmer s(std::move(keep));
  for (size_t at = 0; at < text.size(); at += piece)
    s.feed(std::string_view(text).substr(at, piece));
  return s.result();
}

const std::string kObject =
    R"({"apiVersion":"v1","data":{"a":"}{,\"]","b":[1,{"c":"x"}]},"kind":"ConfigMap",)"
    R"( "metadata" : {"name":"n","labels":{"k":"v"}} ,"status":null})";

TEST_CASE("the skimmer keeps only the named members, whatever the pieces it is fed") {
  const size_t piece = GENERATE(1, 2, 3, 7, 1000);
  CHECK(skim(kObject, {"metadata", "kind"}, piece) ==
        R"({"kind":"ConfigMap","metadata": {"name":"n","labels":{"k":"v"}} })");  // spaces kept
  CHECK(skim(kObject, {"status"}, piece) == R"({"status":null})");
  CHECK(skim(kObject, {}, piece) == "{}");
  CHECK(skim("{}", {"a"}, piece) == "{}");
}

TEST_CASE("the skimmer refuses what is not one complete object") {
  CHECK(skim(kObject.substr(0, kObject.size() - 1), {"kind"}, 5).empty());
  CHECK(skim("[1,2]", {"a"}, 5).empty());
  CHECK(skim(kObject + "x", {"kind"}, 5).empty());
}

TEST_CASE("find_member locates a member's value past strings that look like JSON") {
  auto span = find_member(kObject, "metadata");
  REQUIRE(span);
  CHECK(kObject.substr(span->first, span->second - span->first) ==
        R"({"name":"n","labels":{"k":"v"}})");
  span = find_member(kObject, "status");
  REQUIRE(span);
  CHECK(kObject.substr(span->first, span->second - span->first) == "null");
  CHECK_FALSE(find_member(kObject, "spec"));
  CHECK_FALSE(find_member(R"({"a":"unterminated)", "a"));
  CHECK_FALSE(find_member("not json", "a"));
}

TEST_CASE("find_member tells an escaped quote from a quote after an escaped backslash") {
  // "q\"z" holds an escaped quote; "x\\" ends in an escaped backslash, then its real quote.
  constexpr std::string_view text = R"({"a":"q\"z\\","b":"x\\","c":2})";
  auto span = find_member(text, "b");
  REQUIRE(span);
  CHECK(text.substr(span->first, span->second - span->first) == R"("x\\")");
  span = find_member(text, "c");
  REQUIRE(span);
  CHECK(text.substr(span->first, span->second - span->first) == "2");
  CHECK_FALSE(find_member(R"({"a":"ends in an escaped quote\"})", "b"));
}

}  // namespace
}  // namespace sovdev::kube
