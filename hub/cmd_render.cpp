// render: a stack folder as one environment gets it, for review, diffs between environments,
// or applying by hand. The same rendering `build` packs into a bundle, except that a secret
// reference shows as `<sealed>`: render needs neither hub.db nor the store key.
#include <cstdio>
#include <filesystem>

#include "bundles/yaml/objects.hpp"
#include "hub/build.hpp"
#include "hub/commands.hpp"
#include "hub/secrets/refs.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::hub {
namespace {

struct RenderOptions {
  std::string dir;
  std::string env;
  std::string out;
};

Status render(const RenderOptions& o) {
  if (!is_stack_dir(o.dir)) {
    return make_error(Errc::usage, o.dir + " is not a stack folder (it needs base/ and env/)");
  }
  SOVDEV_ASSIGN(StackEnv env, load_stack_env(o.dir, o.env));
  // `--out -` prints, as other commands' `--out -` do, rather than making a folder named "-".
  const bool to_stdout = o.out.empty() || o.out == "-";
  BuildRequest req;
  req.source_dir = o.dir;
  req.env = &env;
  std::vector<std::string> used;
  size_t objects = 0;
  size_t files = 0;
  auto each = [&](SourceFile&& file, uint64_t) -> Status {
    // Parsed as the build would, so what renders here also builds.
    SOVDEV_ASSIGN(auto parsed, yaml::parse_manifests(file.shown, file.text));
    objects += parsed.size();
    if (secrets::has_ref(file.text)) {
      // Out of place or malformed references are refused here as the build refuses them.
      SOVDEV_TRY(secrets::scan_file(file.shown, file.text));
      file.text = secrets::mask_refs(file.text);
    }
    files++;
    if (to_stdout) {
      std::printf("---\n# Source: %s\n%s%s", file.shown.c_str(), file.text.c_str(),
                  !file.text.empty() && file.text.back() == '\n' ? "" : "\n");
      return {};
    }
    const auto path = std::filesystem::path(o.out) / file.shown;
    SOVDEV_TRY(fs::make_dirs(path.parent_path().string()));
    SOVDEV_ASSIGN(fs::OutputFile out, fs::OutputFile::create(path.string()));
    SOVDEV_TRY(out.write(file.text));
    return out.commit();
  };
  SOVDEV_TRY(for_each_source(req, used, each));
  std::fprintf(stderr, "rendered %s for %s: %zu objects from %zu files%s%s\n",
               stack_name_of(o.dir).c_str(), env.name.c_str(), objects, files,
               to_stdout ? "" : " into ", to_stdout ? "" : o.out.c_str());
  return {};
}

}  // namespace

void add_render(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<RenderOptions>();
  auto* cmd = app.add_subcommand(
      "render", "Print (or write) a stack folder's manifests as one environment gets them");
  cmd->add_option("dir", o->dir, "Stack folder: base/ manifests and env/<env>.toml values")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--env", o->env, "Environment to render (the name of a file in env/)")
      ->required();
  cmd->add_option("--out", o->out,
                  "Write the rendered files into this folder (same layout as base/) instead of "
                  "printing them (- prints them; the summary always goes to stderr)");
  commands.push_back({cmd, [o] { return render(*o); }});
}

}  // namespace sovdev::hub
