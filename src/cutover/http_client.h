// A small blocking HTTP client (cpp-httplib) for the admin and progress endpoints the cut-over
// drives. Errors name the method and the URL.
#pragma once

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>

namespace fhirshift::cutover {

class HttpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  std::multimap<std::string, std::string> headers;
  std::string header(const std::string& name) const;  // case-insensitive; "" when absent
};

// "http://host:port" or "http://host:port/prefix". Throws std::invalid_argument otherwise.
struct HttpUrl {
  std::string scheme_host_port;  // "http://127.0.0.1:8080"
  std::string prefix;            // "" or "/prefix" (no trailing slash)
  static HttpUrl parse(const std::string& url);
  std::string str() const { return scheme_host_port + prefix; }
};

class HttpClient {
 public:
  explicit HttpClient(const std::string& base_url,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  const std::string& base_url() const { return base_; }
  // `path` starts with '/', may carry a query. Throws HttpError when no response came back
  // (connection refused, timeout); any HTTP status is returned.
  HttpResponse get(const std::string& path) const;
  HttpResponse post(const std::string& path, const std::string& body = "",
                    const std::string& content_type = "application/json") const;

 private:
  HttpUrl url_;
  std::string base_;
  std::chrono::milliseconds timeout_;
};

// Percent-encodes a query parameter value.
std::string url_encode(const std::string& value);

}  // namespace fhirshift::cutover
