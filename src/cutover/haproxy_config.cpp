#include "cutover/haproxy_config.h"

#include <cctype>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fhirshift::cutover {

std::string render_template(const std::string& text, const std::map<std::string, std::string>& vars) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t at = text.find('@', pos);
    if (at == std::string::npos) {
      out.append(text, pos, std::string::npos);
      break;
    }
    size_t end = at + 1;
    while (end < text.size() && (std::isupper(static_cast<unsigned char>(text[end])) ||
                                 text[end] == '_' || std::isdigit(static_cast<unsigned char>(text[end]))))
      ++end;
    if (end < text.size() && text[end] == '@' && end > at + 1) {
      std::string name = text.substr(at + 1, end - at - 1);
      auto it = vars.find(name);
      if (it == vars.end())
        throw std::invalid_argument("HAProxy template: no value for @" + name + "@");
      out.append(text, pos, at - pos);
      out += it->second;
      pos = end + 1;
    } else {
      out.append(text, pos, at - pos + 1);
      pos = at + 1;
    }
  }
  return out;
}

std::string render_template_file(const std::string& path,
                                 const std::map<std::string, std::string>& vars) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read HAProxy template " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return render_template(ss.str(), vars);
}

}  // namespace fhirshift::cutover
