#include "chromium.h"

#include <httplib.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

namespace fhirshift::testing {
namespace {

// No sandbox (tests may run as root in a container), no GPU, no first-run UI, no network beyond
// what the page fetches from 127.0.0.1, a throwaway profile.
std::vector<std::string> base_args(const std::filesystem::path& profile) {
  return {chromium_binary(),
          "--headless=new",
          "--no-sandbox",
          "--disable-gpu",
          "--no-first-run",
          "--no-default-browser-check",
          "--disable-extensions",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--user-data-dir=" + profile.string()};
}

std::string need_binary() {
  std::string b = chromium_binary();
  if (b.empty())
    throw std::runtime_error(
        "chromium is not installed: `apt-get install -y chromium` (scripts/setup.sh "
        "installs it), or point $FHIRSHIFT_CHROMIUM at a Chromium binary");
  return b;
}

}  // namespace

std::string chromium_binary() {
  if (const char* env = std::getenv("FHIRSHIFT_CHROMIUM"); env && *env) return env;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::filesystem::path candidate =
        std::filesystem::path(dirs.substr(start, end - start)) / "chromium";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  return "";
}

std::string chromium_dump_dom(const std::string& url, std::chrono::milliseconds budget) {
  need_binary();
  TempDir profile("fhirshift-chromium");
  auto args = base_args(profile.path());
  args.insert(args.end(),
              {"--virtual-time-budget=" + std::to_string(budget.count()), "--dump-dom", url});
  RunResult r = run_command(args, std::chrono::minutes(2));
  if (r.exit_code != 0)
    throw std::runtime_error("chromium --dump-dom " + url + " exited " +
                             std::to_string(r.exit_code) + ": " + r.err);
  return r.out;
}

bool chromium_screenshot(const std::string& url, std::chrono::milliseconds budget,
                         const std::filesystem::path& png, std::string& error) {
  need_binary();
  TempDir profile("fhirshift-chromium");
  std::filesystem::create_directories(png.parent_path());
  std::filesystem::remove(png);
  auto args = base_args(profile.path());
  args.insert(args.end(),
              {"--virtual-time-budget=" + std::to_string(budget.count()), "--hide-scrollbars",
               "--window-size=1100,1500", "--screenshot=" + png.string(), url});
  RunResult r = run_command(args, std::chrono::minutes(2));
  error = r.err;
  return r.exit_code == 0 && std::filesystem::exists(png) && std::filesystem::file_size(png) > 0;
}

LiveChromium::LiveChromium(const std::string& url) : url_(url), dir_("fhirshift-chromium-live") {
  need_binary();
  auto args = base_args(dir_.path() / "profile");
  // Port 0: the kernel picks one and chromium prints it ("DevTools listening on ws://...").
  args.insert(args.end(),
              {"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", url});
  proc_ = std::make_unique<Subprocess>(args, dir_.path(), "chromium");
  const std::string banner = "DevTools listening on ws://127.0.0.1:";
  if (!proc_->wait_for_output(banner, std::chrono::seconds(60)))
    throw std::runtime_error("chromium did not open its DevTools port within 60 s: " +
                             proc_->stderr_text());
  std::smatch m;
  std::string err = proc_->stderr_text();
  if (!std::regex_search(err, m,
                         std::regex("DevTools listening on ws://127\\.0\\.0\\.1:([0-9]+)/")))
    throw std::runtime_error("cannot read chromium's DevTools port from: " + err);
  devtools_port_ = std::stoi(m[1].str());
}

LiveChromium::~LiveChromium() {
  proc_->stop(std::chrono::seconds(5));
}

std::string LiveChromium::title() {
  httplib::Client c("127.0.0.1", devtools_port_);
  auto r = c.Get("/json/list");
  if (!r || r->status != 200) return "";
  for (const auto& target : nlohmann::json::parse(r->body))
    if (target.value("type", "") == "page" && target.value("url", "").rfind(url_, 0) == 0)
      return target.value("title", "");
  return "";
}

}  // namespace fhirshift::testing
