#include "cutover/http_client.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>

namespace fhirshift::cutover {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

HttpResponse convert(const httplib::Result& r) {
  HttpResponse out;
  out.status = r->status;
  out.body = r->body;
  for (const auto& [k, v] : r->headers) out.headers.emplace(lower(k), v);
  return out;
}

}  // namespace

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(lower(name));
  return it == headers.end() ? "" : it->second;
}

HttpUrl HttpUrl::parse(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos)
    throw std::invalid_argument("'" + url + "' is not an http:// URL");
  std::string scheme = lower(url.substr(0, scheme_end));
  if (scheme != "http")
    throw std::invalid_argument("'" + url + "': only http:// URLs are supported");
  auto path_start = url.find('/', scheme_end + 3);
  HttpUrl out;
  out.scheme_host_port = url.substr(0, path_start);
  if (out.scheme_host_port.size() <= scheme_end + 3)
    throw std::invalid_argument("'" + url + "' has no host");
  if (path_start != std::string::npos) out.prefix = url.substr(path_start);
  while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  return out;
}

HttpClient::HttpClient(const std::string& base_url, std::chrono::milliseconds timeout)
    : url_(HttpUrl::parse(base_url)), base_(url_.str()), timeout_(timeout) {}

HttpResponse HttpClient::get(const std::string& path) const {
  httplib::Client cli(url_.scheme_host_port);
  cli.set_connection_timeout(std::chrono::milliseconds(std::min<long>(timeout_.count(), 3000)));
  cli.set_read_timeout(timeout_);
  cli.set_write_timeout(timeout_);
  auto r = cli.Get(url_.prefix + path);
  if (!r)
    throw HttpError("GET " + base_ + path + ": " + httplib::to_string(r.error()));
  return convert(r);
}

HttpResponse HttpClient::post(const std::string& path, const std::string& body,
                              const std::string& content_type) const {
  httplib::Client cli(url_.scheme_host_port);
  cli.set_connection_timeout(std::chrono::milliseconds(std::min<long>(timeout_.count(), 3000)));
  cli.set_read_timeout(timeout_);
  cli.set_write_timeout(timeout_);
  auto r = cli.Post(url_.prefix + path, body, content_type);
  if (!r)
    throw HttpError("POST " + base_ + path + ": " + httplib::to_string(r.error()));
  return convert(r);
}

std::string url_encode(const std::string& value) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace fhirshift::cutover
