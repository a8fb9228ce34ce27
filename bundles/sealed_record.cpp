#include "bundles/sealed_record.hpp"

#include <sodium.h>

#include <nlohmann/json.hpp>

namespace sovdev::sealed {
namespace {

constexpr std::string_view kDomain = "sovdev/v1/sealed-secret";
constexpr int kBase64 = sodium_base64_VARIANT_ORIGINAL;

std::string decimal(uint64_t n) {
  return std::to_string(n);
}

// Zeroes every string a parsed JSON value holds, before the value is freed.
void wipe_json(nlohmann::json& value) {
  if (value.is_string()) {
    wipe(value.get_ref<std::string&>());
  } else if (value.is_structured()) {
    for (auto& item : value) wipe_json(item);
  }
}

struct WipedJson {
  nlohmann::json value;
  ~WipedJson() { wipe_json(value); }
};

bool is_base64(const std::string& text) {
  if (text.size() % 4 != 0) return false;
  size_t bin_len = 0;
  std::string scratch(text.size() / 4 * 3, '\0');
  const bool ok =
      sodium_base642bin(reinterpret_cast<unsigned char*>(scratch.data()), scratch.size(),
                        text.data(), text.size(), nullptr, &bin_len, nullptr, kBase64) == 0;
  wipe(scratch);
  return ok;
}

}  // namespace

Place place_of(const pb::BundleManifest& manifest) {
  return {manifest.stack(), manifest.version(), manifest.secrets_channel(),
          manifest.secrets_epoch()};
}

std::string associated_data(const Place& place, const pb::ResourceRecord& record) {
  return seal::associated_data(
      kDomain, {place.stack, decimal(place.version), place.channel, decimal(place.epoch),
                record.api_version(), record.kind(), record.namespace_(), record.name()});
}

seal::SecretBytes data_object(const std::map<std::string, seal::SecretBytes>& values) {
  size_t size = 2 + (values.empty() ? 0 : values.size() - 1);  // {} and the commas
  for (const auto& [key, value] : values) {
    size += key.size() + 5 + sodium_base64_encoded_len(value.size(), kBase64) - 1;  // "k":"v"
  }
  seal::SecretBytes out(size);
  char* at = reinterpret_cast<char*>(out.data());
  *at++ = '{';
  bool first = true;
  for (const auto& [key, value] : values) {
    if (!first) *at++ = ',';
    first = false;
    *at++ = '"';
    at = std::copy(key.begin(), key.end(), at);
    *at++ = '"';
    *at++ = ':';
    *at++ = '"';
    const size_t encoded = sodium_base64_encoded_len(value.size(), kBase64);  // with its NUL
    sodium_bin2base64(at, encoded, value.data(), value.size(), kBase64);
    at += encoded - 1;
    *at++ = '"';
  }
  *at = '}';
  return out;
}

void seal_record(pb::ResourceRecord& record, const seal::SecretBytes& data,
                 const seal::SecretBytes& key, const Place& place) {
  record.set_sealed(seal::encrypt(key, data.view(), associated_data(place, record)));
}

Expected<seal::SecretBytes> open_record(const pb::ResourceRecord& record,
                                        const seal::SecretBytes& key, const Place& place) {
  if (record.sealed().empty()) {
    return make_error(Errc::invalid, "the record has no sealed values");
  }
  return seal::decrypt(key, record.sealed(), associated_data(place, record), kMaxSealedData);
}

Expected<std::string> splice(std::string_view json, const seal::SecretBytes& opened) {
  nlohmann::json object = nlohmann::json::parse(json, nullptr, false);
  if (!object.is_object() || !object.contains("data") || !object["data"].is_object()) {
    return make_error(Errc::invalid, "a sealed record's object has no data map");
  }
  WipedJson values{nlohmann::json::parse(opened.view(), nullptr, false)};
  if (!values.value.is_object()) {
    return make_error(Errc::invalid, "the sealed values are not a JSON object");
  }
  nlohmann::json& data = object["data"];
  for (const auto& [key, empty] : data.items()) {
    if (!empty.is_string() || !empty.get_ref<const std::string&>().empty()) {
      return make_error(Errc::invalid, "data key '" + key + "' of a sealed object is not empty");
    }
    if (!values.value.contains(key)) {
      return make_error(Errc::invalid, "data key '" + key + "' has no sealed value");
    }
  }
  for (auto& [key, value] : values.value.items()) {
    if (!data.contains(key)) {
      return make_error(Errc::invalid, "sealed key '" + key + "' is not among the data keys");
    }
    if (!value.is_string() || !is_base64(value.get_ref<const std::string&>())) {
      return make_error(Errc::invalid, "the sealed value of '" + key + "' is not base64");
    }
    data[key] = value.get_ref<const std::string&>();
  }
  std::string out = object.dump();
  wipe_json(object);
  return out;
}

void wipe(std::string& text) {
  if (!text.empty()) sodium_memzero(text.data(), text.size());
}

}  // namespace sovdev::sealed
