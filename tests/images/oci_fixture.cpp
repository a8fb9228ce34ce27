#include "tests/images/oci_fixture.hpp"

#include <zstd.h>

#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "bundles/hash.hpp"
#include "common/hex.hpp"

namespace sovdev::testing {
namespace {

void put_octal(std::string& header, size_t at, size_t width, std::uint64_t value) {
  char text[32];
  std::snprintf(text, sizeof text, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
  header.replace(at, width - 1, text);
}

nlohmann::json descriptor(const TestBlob& blob) {
  return {{"mediaType", blob.media_type}, {"digest", blob.digest()}, {"size", blob.bytes.size()}};
}

TestBlob make_config(const std::string& arch, const std::vector<const TestBlob*>& layers) {
  nlohmann::json diff_ids = nlohmann::json::array();
  for (const TestBlob* layer : layers) diff_ids.push_back(layer->digest());
  nlohmann::json config = {{"architecture", arch},
                           {"os", "linux"},
                           {"config", {{"Cmd", {"/hello"}}}},
                           {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  return {"application/vnd.oci.image.config.v1+json", config.dump()};
}

TestBlob make_manifest(const TestBlob& config, const std::vector<const TestBlob*>& layers) {
  nlohmann::json list = nlohmann::json::array();
  for (const TestBlob* layer : layers) list.push_back(descriptor(*layer));
  nlohmann::json manifest = {{"schemaVersion", 2},
                             {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                             {"config", descriptor(config)},
                             {"layers", list}};
  return {"application/vnd.oci.image.manifest.v1+json", manifest.dump()};
}

}  // namespace

std::string make_tar(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out;
  for (const auto& [name, content] : files) {
    std::string header(512, '\0');
    header.replace(0, name.size(), name);
    put_octal(header, 100, 8, 0644);  // mode
    put_octal(header, 108, 8, 0);     // uid
    put_octal(header, 116, 8, 0);     // gid
    put_octal(header, 124, 12, content.size());
    put_octal(header, 136, 12, 1700000000);  // mtime
    header[156] = '0';                       // a regular file
    header.replace(257, 6, std::string("ustar\0", 6));
    header.replace(263, 2, "00");
    header.replace(148, 8, "        ");  // the checksum counts its own field as spaces
    unsigned sum = 0;
    for (unsigned char c : header) sum += c;
    char text[8];
    std::snprintf(text, sizeof text, "%06o", sum);
    header.replace(148, 6, text);
    header[154] = '\0';
    header[155] = ' ';
    out += header;
    out += content;
    out.append((512 - content.size() % 512) % 512, '\0');
  }
  out.append(1024, '\0');
  return out;
}

std::string digest_raw(const std::string& bytes) {
  return sha256(bytes);
}

std::string digest_text(const std::string& bytes) {
  return "sha256:" + to_hex(sha256(bytes));
}

std::string zstd_compress(const std::string& bytes, int level, int window_log, bool checksum) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_windowLog, window_log);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, checksum ? 1 : 0);
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  const size_t n = ZSTD_compress2(cctx.get(), out.data(), out.size(), bytes.data(), bytes.size());
  if (ZSTD_isError(n)) throw std::runtime_error(ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

std::string TestBlobSource::add(const TestBlob& blob) {
  const std::string raw = digest_raw(blob.bytes);
  const std::string path = dir_ + "/" + to_hex(raw) + ".zst";
  write_text(path, zstd_compress(blob.bytes, 3, 21, false));
  put(raw, {blob.media_type, blob.bytes.size(), path});
  return path;
}

void TestBlobSource::put(const std::string& raw_digest, agent::images::HeldBlob held) {
  held_[raw_digest] = std::move(held);
}

Expected<std::optional<agent::images::HeldBlob>> TestBlobSource::find(std::string_view digest) {
  ++calls_;
  const auto it = held_.find(std::string(digest));
  if (it == held_.end()) return std::optional<agent::images::HeldBlob>();
  return std::optional<agent::images::HeldBlob>(it->second);
}

std::vector<const TestBlob*> TestImage::all() const {
  std::vector<const TestBlob*> out{&index};
  for (const auto* list : {&manifests, &configs, &layers}) {
    for (const TestBlob& b : *list) out.push_back(&b);
  }
  return out;
}

TestImage make_test_image() {
  constexpr const char* kLayer = "application/vnd.oci.image.layer.v1.tar";
  TestImage image;
  image.layers.push_back({kLayer, make_tar({{"etc/os-release", "ID=sovdev-test\n"},
                                            {"hello", "#!/bin/sh\necho hello\n"}})});
  image.layers.push_back({kLayer, make_tar({{"arch", "amd64\n"}})});
  image.layers.push_back({kLayer, make_tar({{"arch", "arm64\n"}})});
  const char* archs[] = {"amd64", "arm64"};
  nlohmann::json entries = nlohmann::json::array();
  for (size_t i = 0; i < 2; ++i) {
    const std::vector<const TestBlob*> layers{&image.layers[0], &image.layers[1 + i]};
    image.configs.push_back(make_config(archs[i], layers));
    image.manifests.push_back(make_manifest(image.configs.back(), layers));
    nlohmann::json entry = descriptor(image.manifests.back());
    entry["platform"] = {{"architecture", archs[i]}, {"os", "linux"}};
    entries.push_back(entry);
  }
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", "application/vnd.oci.image.index.v1+json"},
                          {"manifests", entries}};
  image.index = {"application/vnd.oci.image.index.v1+json", index.dump()};
  return image;
}

std::string CurlReply::header(const std::string& name) const {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  };
  const std::string want = lower(name) + ":";
  size_t start = 0;
  while (start < headers.size()) {
    size_t end = headers.find('\n', start);
    if (end == std::string::npos) end = headers.size();
    std::string line = headers.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lower(line).rfind(want, 0) == 0) {
      std::string value = line.substr(want.size());
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      return value;
    }
    start = end + 1;
  }
  return "";
}

std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (!candidate.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

CurlReply curl(const TempDir& tmp, const std::vector<std::string>& extra, const std::string& url) {
  const std::string head_file = tmp / "curl-headers";
  const std::string body_file = tmp / "curl-body";
  std::remove(head_file.c_str());
  std::remove(body_file.c_str());
  static const std::string program = find_program("curl");
  if (program.empty()) throw std::runtime_error("curl is not installed (scripts/setup.sh)");
  std::vector<std::string> argv{program,   "-sS", "--max-time", "60", "-D",
                                head_file, "-o",  body_file,    "-w", "%{http_code}"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  const RunResult r = run(argv);
  CurlReply reply;
  reply.exit_code = r.exit_code;
  reply.err = r.err;
  reply.status = std::atoi(r.out.c_str());
  FILE* f = std::fopen(head_file.c_str(), "rb");
  if (f != nullptr) {
    std::fclose(f);
    reply.headers = read_text(head_file);
  }
  f = std::fopen(body_file.c_str(), "rb");
  if (f != nullptr) {
    std::fclose(f);
    reply.body = read_text(body_file);
  }
  return reply;
}

}  // namespace sovdev::testing
