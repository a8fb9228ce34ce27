// bundles/sealed_record: a Secret's values sealed in its record, opened only in its own place.
#include <catch2/catch.hpp>
#include <string>

#include "bundles/sealed_record.hpp"

using namespace sovdev;
using namespace sovdev::sealed;

namespace {

pb::ResourceRecord secret_record(const std::string& name, const std::string& json) {
  pb::ResourceRecord r;
  r.set_api_version("v1");
  r.set_kind("Secret");
  r.set_namespace_("app");
  r.set_name(name);
  r.set_json(json);
  return r;
}

const std::string kVisible =
    R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"app"},)"
    R"("data":{"password":"","user":""}})";

seal::SecretBytes values(std::initializer_list<std::pair<const char*, std::string_view>> list) {
  std::map<std::string, seal::SecretBytes> map;
  for (const auto& [k, v] : list) map.emplace(k, seal::SecretBytes::copy_of(v));
  return data_object(map);
}

}  // namespace

TEST_CASE("the sealed values of a Secret are one JSON object of base64 strings", "[sealed]") {
  CHECK(values({}).view() == "{}");
  CHECK(values({{"a", "hi"}}).view() == R"({"a":"aGk="})");
  CHECK(values({{"user", "admin"}, {"password", std::string_view("p\0w", 3)}}).view() ==
        R"({"password":"cAB3","user":"YWRtaW4="})");
}

TEST_CASE("a sealed record opens in its own place and splices its values into its data",
          "[sealed]") {
  const seal::SecretBytes key = seal::random_key();
  const Place place{"sovdev", 12, "edge", 3};
  pb::ResourceRecord r = secret_record("db", kVisible);
  seal_record(r, values({{"password", "s3cret-PLANT"}, {"user", "admin"}}), key, place);
  CHECK(r.sealed().find("s3cret-PLANT") == std::string::npos);
  CHECK(r.sealed().find("czNjcmV0") == std::string::npos);  // nor its base64

  auto opened = open_record(r, key, place);
  REQUIRE(opened);
  auto body = splice(r.json(), *opened);
  REQUIRE(body);
  CHECK_THAT(*body, Catch::Contains(R"("password":"czNjcmV0LVBMQU5U")"));
  CHECK_THAT(*body, Catch::Contains(R"("user":"YWRtaW4=")"));
  CHECK_THAT(*body, Catch::Contains(R"("name":"db")"));
  wipe(*body);
  CHECK(body->find("czNjcmV0") == std::string::npos);
}

TEST_CASE("a sealed record moved to another object, version, stack or epoch does not open",
          "[sealed]") {
  const seal::SecretBytes key = seal::random_key();
  const Place place{"sovdev", 12, "edge", 3};
  pb::ResourceRecord r = secret_record("db", kVisible);
  seal_record(r, values({{"password", "x"}, {"user", "y"}}), key, place);

  pb::ResourceRecord other = r;
  other.set_name("db2");
  CHECK(open_record(other, key, place).error().code == Errc::signature);
  other = r;
  other.set_namespace_("kube-system");
  CHECK(open_record(other, key, place).error().code == Errc::signature);
  CHECK(open_record(r, key, {"sovdev", 13, "edge", 3}).error().code == Errc::signature);
  CHECK(open_record(r, key, {"other", 12, "edge", 3}).error().code == Errc::signature);
  CHECK(open_record(r, key, {"sovdev", 12, "prod", 3}).error().code == Errc::signature);
  CHECK(open_record(r, key, {"sovdev", 12, "edge", 4}).error().code == Errc::signature);
  CHECK(open_record(r, seal::random_key(), place).error().code == Errc::signature);
  for (size_t at : {size_t{0}, size_t{30}, r.sealed().size() - 1}) {
    pb::ResourceRecord changed = r;
    std::string bytes = changed.sealed();
    bytes[at] = static_cast<char>(bytes[at] ^ 0x40);
    changed.set_sealed(bytes);
    CHECK(open_record(changed, key, place).error().code == Errc::signature);
  }
  CHECK(open_record(secret_record("db", kVisible), key, place).error().code == Errc::invalid);
}

TEST_CASE("a splice refuses sealed keys that differ from the visible ones, naming no value",
          "[sealed]") {
  auto refusal = [](const std::string& json, const seal::SecretBytes& opened) {
    auto body = splice(json, opened);
    REQUIRE_FALSE(body);
    CHECK(body.error().code == Errc::invalid);
    CHECK(body.error().message.find("PLANT") == std::string::npos);
    CHECK(body.error().message.find("UExBTlQ") == std::string::npos);
    return body.error().message;
  };
  CHECK_THAT(refusal(kVisible, values({{"password", "PLANT"}})),
             Catch::Contains("'user' has no sealed value"));
  CHECK_THAT(refusal(kVisible, values({{"password", "PLANT"}, {"user", "u"}, {"extra", "e"}})),
             Catch::Contains("'extra' is not among the data keys"));
  const std::string filled = R"({"kind":"Secret","data":{"password":"UExBTlQ=","user":""}})";
  CHECK_THAT(refusal(filled, values({{"password", "PLANT"}, {"user", "u"}})),
             Catch::Contains("'password' of a sealed object is not empty"));
  CHECK_THAT(refusal(R"({"kind":"Secret"})", values({{"password", "PLANT"}})),
             Catch::Contains("no data map"));
  CHECK_THAT(
      refusal(kVisible, seal::SecretBytes::copy_of(R"({"password":"PLANT!!","user":"dQ=="})")),
      Catch::Contains("'password' is not base64"));
  CHECK_THAT(refusal(kVisible, seal::SecretBytes::copy_of("[1,2]")),
             Catch::Contains("not a JSON object"));
}
