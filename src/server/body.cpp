#include "server/body.h"

#include <simdjson.h>

#include <set>

#include "schema/entry.h"

namespace fhirshift::server {
namespace {

// --- a scanner over JSON text that simdjson already validated ---------------------------------
// It only finds where values start and end; it never interprets numbers, so their text survives.

size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

size_t skip_string(std::string_view s, size_t i) {  // s[i] == '"'; returns one past the closing quote
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') ++i;
    else if (s[i] == '"') return i + 1;
  }
  return s.size();
}

size_t skip_value(std::string_view s, size_t i) {
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      char c = s[i];
      if (c == '"') {
        i = skip_string(s, i) - 1;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return s.size();
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' &&
         s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
    ++i;
  return i;
}

struct Member {
  std::string_view key;    // without quotes, as written (escapes not decoded)
  std::string_view value;  // the value's exact text
};

// Members of the object whose text is `obj` (validated JSON, starting at '{').
std::vector<Member> members(std::string_view obj) {
  std::vector<Member> out;
  size_t i = skip_ws(obj, 0) + 1;
  while (true) {
    i = skip_ws(obj, i);
    if (i >= obj.size() || obj[i] == '}') break;
    if (obj[i] == ',') i = skip_ws(obj, i + 1);
    size_t key_end = skip_string(obj, i);
    std::string_view key = obj.substr(i + 1, key_end - i - 2);
    if (key.find('\\') != std::string_view::npos)
      throw BodyError(400, "invalid", "member names with escape sequences are not FHIR element names");
    i = skip_ws(obj, key_end);  // at ':'
    i = skip_ws(obj, i + 1);
    size_t value_end = skip_value(obj, i);
    out.push_back({key, obj.substr(i, value_end - i)});
    i = value_end;
  }
  return out;
}

// Elements of the array whose text is `arr`.
std::vector<std::string_view> elements(std::string_view arr) {
  std::vector<std::string_view> out;
  size_t i = skip_ws(arr, 0) + 1;
  while (true) {
    i = skip_ws(arr, i);
    if (i >= arr.size() || arr[i] == ']') break;
    if (arr[i] == ',') i = skip_ws(arr, i + 1);
    size_t end = skip_value(arr, i);
    out.push_back(arr.substr(i, end - i));
    i = end;
  }
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

BodyError invalid(const std::string& message) { return BodyError(400, "invalid", message); }

struct Checked {
  std::vector<ContainedResource> contained;  // json filled in later from the text
};

// Validates the parsed body; returns the contained resources' type and id.
Checked check(const simdjson::dom::element& doc, std::string_view type,
              std::optional<std::string_view> put_id) {
  simdjson::dom::object obj;
  if (doc.get_object().get(obj))
    throw invalid("the body must be a JSON object (a FHIR resource)");
  std::string_view rt;
  if (obj["resourceType"].get_string().get(rt))
    throw invalid("the body has no resourceType (a string) at the top level");
  if (rt != type)
    throw invalid("the body's resourceType is \"" + std::string(rt) + "\" but the URL is for " +
                  std::string(type));
  if (put_id) {
    std::string_view body_id;
    auto id_field = obj["id"];
    if (id_field.error() == simdjson::NO_SUCH_FIELD)
      throw invalid("an update must carry the resource id in the body (\"id\": \"" +
                    std::string(*put_id) + "\")");
    if (id_field.get_string().get(body_id))
      throw invalid("the body's id must be a string");
    if (body_id != *put_id)
      throw invalid("the body's id \"" + std::string(body_id) + "\" does not match the URL's id \"" +
                    std::string(*put_id) + "\"");
  }
  auto meta = obj["meta"];
  if (meta.error() != simdjson::NO_SUCH_FIELD && !meta.is_object())
    throw invalid("meta must be a JSON object");

  Checked out;
  auto contained = obj["contained"];
  if (contained.error() == simdjson::NO_SUCH_FIELD) return out;
  simdjson::dom::array arr;
  if (contained.get_array().get(arr)) throw invalid("contained must be an array of resources");
  std::set<std::string_view> ids;
  size_t n = 0;
  for (auto element : arr) {
    std::string where = "contained[" + std::to_string(n++) + "]";
    simdjson::dom::object c;
    if (element.get_object().get(c)) throw invalid(where + " is not a JSON object");
    std::string_view ctype, cid;
    if (c["resourceType"].get_string().get(ctype) || ctype.empty() || ctype[0] < 'A' ||
        ctype[0] > 'Z')
      throw invalid(where + " has no resourceType");
    if (c["id"].get_string().get(cid) || !schema::is_valid_fhir_id(cid))
      throw invalid(where + " needs an id ([A-Za-z0-9-.]{1,64}) so that references to it (#id) "
                            "resolve");
    if (!ids.insert(cid).second)
      throw invalid(where + ": the contained id \"" + std::string(cid) + "\" is used twice");
    out.contained.push_back({std::string(ctype), std::string(cid), ""});
  }
  return out;
}

Checked parse_and_check(simdjson::dom::parser& parser, std::string_view text,
                        std::string_view type, std::optional<std::string_view> put_id) {
  simdjson::dom::element doc;
  if (auto err = parser.parse(text.data(), text.size()).get(doc))
    throw BodyError(400, "structure",
                    std::string("the body is not valid JSON: ") + simdjson::error_message(err));
  return check(doc, type, put_id);
}

}  // namespace

PreparedBody prepare_body(std::string_view text, const BodyTarget& target) {
  simdjson::dom::parser parser;
  Checked checked = parse_and_check(parser, text, target.type,
                                    target.id_must_match ? std::optional(target.id) : std::nullopt);
  PreparedBody out;
  out.json.reserve(text.size() + 96);
  std::vector<Member> top = members(text);
  std::string_view resource_type, meta_text;
  for (const auto& m : top) {
    if (m.key == "resourceType") resource_type = m.value;
    if (m.key == "meta") meta_text = m.value;
  }
  out.json += "{\"resourceType\":";
  out.json += resource_type;
  out.json += ",\"id\":";
  append_json_string(out.json, target.id);
  out.json += ",\"meta\":{";
  if (!meta_text.empty()) {
    for (const auto& m : members(meta_text)) {
      if (m.key == "versionId" || m.key == "lastUpdated") continue;
      out.json += '"';
      out.json += m.key;
      out.json += "\":";
      out.json += m.value;
      out.json += ',';
    }
  }
  out.json += "\"versionId\":";
  append_json_string(out.json, target.version);
  out.json += ",\"lastUpdated\":";
  append_json_string(out.json, target.last_updated);
  out.json += '}';
  for (const auto& m : top) {
    if (m.key == "resourceType" || m.key == "id" || m.key == "meta") continue;
    out.json += ",\"";
    out.json += m.key;
    out.json += "\":";
    out.json += m.value;
    if (m.key == "contained") {
      auto items = elements(m.value);
      for (size_t i = 0; i < items.size() && i < checked.contained.size(); ++i)
        checked.contained[i].json = std::string(items[i]);
    }
  }
  out.json += '}';
  out.contained = std::move(checked.contained);
  return out;
}

}  // namespace fhirshift::server
