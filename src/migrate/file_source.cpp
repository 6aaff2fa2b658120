#include "migrate/file_source.h"

#include <fmt/format.h>
#include <simdjson.h>
#include <zlib.h>

#include <algorithm>

#include "migrate/transform.h"
#include "schema/entry.h"
#include "server/body.h"
#include "server/resource_types.h"

namespace fhirshift::migrate {
namespace {

constexpr size_t kExcerptBytes = 300;

void set_problem(FileEntry& e, std::string reason, const std::string& what, std::string_view text) {
  e.reason = std::move(reason);
  e.problem = e.where() + ": " + what;
  e.excerpt = std::string(text.substr(0, kExcerptBytes));
}

std::string_view trim(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower_name(const std::filesystem::path& p) {
  std::string name = p.filename().string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name;
}

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_ndjson(const std::filesystem::path& p) {
  std::string name = lower_name(p);
  return ends_with(name, ".ndjson") || ends_with(name, ".ndjson.gz");
}

bool is_listed_extension(const std::filesystem::path& p) { return is_ndjson(p) || ends_with(lower_name(p), ".json"); }

// Reads a file line by line through zlib, which reads gzip-compressed files and passes others
// through as they are; lines of any length (a resource may have megabytes).
class LineReader {
 public:
  explicit LineReader(const std::filesystem::path& path) : path_(path) {
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) throw FileSourceError("cannot open " + path.string());
    gzbuffer(file_, kReadBytes);
  }
  ~LineReader() {
    if (file_) gzclose_r(file_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without its '\n', or false at the end of the file. Throws FileSourceError on a
  // read error or a damaged compressed file.
  bool next(std::string& line, int64_t line_no) {
    for (;;) {
      size_t end = buffer_.find('\n', start_);
      if (end != std::string::npos) {
        line.assign(buffer_, start_, end - start_);
        start_ = end + 1;
        return true;
      }
      if (eof_) {
        if (start_ >= buffer_.size()) return false;
        line.assign(buffer_, start_, std::string::npos);
        start_ = buffer_.size();
        return true;
      }
      buffer_.erase(0, start_);
      start_ = 0;
      size_t have = buffer_.size();
      buffer_.resize(have + kReadBytes);
      int n = gzread(file_, buffer_.data() + have, kReadBytes);
      if (n < 0) fail(line_no);
      buffer_.resize(have + static_cast<size_t>(n));
      if (n == 0) {
        int code = Z_OK;
        gzerror(file_, &code);
        if (code != Z_OK) fail(line_no);
        eof_ = true;
      }
    }
  }
  // Bytes of the file (compressed or not) consumed so far.
  int64_t offset() const { return static_cast<int64_t>(gzoffset(file_)); }

 private:
  static constexpr unsigned kReadBytes = 256 * 1024;
  [[noreturn]] void fail(int64_t line_no) {
    int code = Z_OK;
    const char* message = gzerror(file_, &code);
    throw FileSourceError(fmt::format("cannot read {} after line {}: {}{}", path_.string(), line_no,
                                      message ? message : "read error",
                                      code == Z_BUF_ERROR || code == Z_DATA_ERROR
                                          ? " (a damaged or truncated gzip file: check it with gzip -t)"
                                          : ""));
  }

  std::filesystem::path path_;
  gzFile file_ = nullptr;
  std::string buffer_;
  size_t start_ = 0;
  bool eof_ = false;
};

}  // namespace

std::string FileEntry::where() const {
  if (in_bundle) return fmt::format("{} entry {} (line {})", file.string(), ordinal, line);
  return fmt::format("{} line {}", file.string(), line);
}

void read_resource(FileEntry& e, std::string_view text) {
  if (text.size() > kMaxBodyBytes) {
    set_problem(e, "oversized",
                fmt::format("the resource is {} bytes, above the limit of {} (MongoDB's 16 MiB document "
                            "limit, with the search index)",
                            text.size(), kMaxBodyBytes),
                text);
    return;
  }
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(text.data(), text.size()).get(doc)) {
    set_problem(e, "invalid-json", std::string("not valid JSON (") + simdjson::error_message(err) + ")", text);
    return;
  }
  simdjson::dom::object object;
  if (doc.get(object)) {
    set_problem(e, "invalid-json", "not a JSON object", text);
    return;
  }
  std::string_view type, id;
  if (object["resourceType"].get(type)) {
    set_problem(e, "bad-field", "no resourceType (a string) in the resource", text);
    return;
  }
  if (!server::is_r4_resource_type(type)) {
    set_problem(e, "unknown-type", "resourceType '" + std::string(type) + "' is not a FHIR R4 resource type", text);
    return;
  }
  if (object["id"].get(id)) {
    set_problem(e, "bad-field",
                "the " + std::string(type) +
                    " has no id: only resources with their id are imported (each becomes a new version of "
                    "that id)",
                text);
    return;
  }
  if (!schema::is_valid_fhir_id(id)) {
    set_problem(e, "bad-field", "id '" + std::string(id) + "' is not a FHIR id ([A-Za-z0-9-.]{1,64})", text);
    return;
  }
  try {
    // The checks a FHIR server makes on an update (meta an object, contained resources with type
    // and unique ids); the importer rewrites meta the same way once the version is known.
    server::prepare_body(text, server::BodyTarget{type, id, true, "1", "1970-01-01T00:00:00.000Z"});
  } catch (const server::BodyError& err) {
    set_problem(e, "bad-resource", err.what(), text);
    return;
  }
  e.type = type;
  e.id = id;
  e.json = text;
}

// --- the file being read ---------------------------------------------------------------------

struct FileSource::Open {
  std::filesystem::path path;
  bool ndjson = false;
  int64_t read = 0;  // entries returned so far
  // ndjson: streamed line by line.
  std::unique_ptr<LineReader> in;
  int64_t line = 0;
  // JSON: parsed whole into its entries.
  std::vector<FileEntry> entries;

  std::optional<FileEntry> next() {
    if (!ndjson) {
      if (read >= static_cast<int64_t>(entries.size())) return std::nullopt;
      return std::move(entries[static_cast<size_t>(read++)]);
    }
    std::string text;
    while (in->next(text, line)) {
      ++line;
      std::string_view t = trim(text);
      if (t.empty()) continue;
      FileEntry e;
      e.file = path;
      e.ordinal = ++read;
      e.line = line;
      read_resource(e, t);
      return e;
    }
    return std::nullopt;
  }

  // Skips `n` entries without checking them (they were imported by an earlier run).
  void skip(int64_t n) {
    if (!ndjson) {
      if (n > static_cast<int64_t>(entries.size()))
        throw FileSourceError(fmt::format("{} has {} entries but the recovery journal's checkpoint is after entry "
                                          "{}: the file changed since the run began",
                                          path.string(), entries.size(), n));
      read = n;
      return;
    }
    std::string text;
    while (read < n && in->next(text, line)) {
      ++line;
      if (!trim(text).empty()) ++read;
    }
    if (read < n)
      throw FileSourceError(fmt::format("{} has {} lines with a resource but the recovery journal's checkpoint is "
                                        "after line entry {}: the file changed since the run began",
                                        path.string(), read, n));
  }

  void load_json() {
    simdjson::padded_string text;
    if (auto err = simdjson::padded_string::load(path.string()).get(text))
      throw FileSourceError("cannot read " + path.string() + ": " + simdjson::error_message(err));
    auto whole = [&](std::string reason, const std::string& what) {
      FileEntry e;
      e.file = path;
      e.ordinal = 1;
      e.line = 1;
      set_problem(e, std::move(reason), what, std::string_view(text));
      entries.push_back(std::move(e));
    };
    simdjson::dom::parser dom;
    simdjson::dom::element doc;
    if (auto err = dom.parse(text).get(doc)) {
      whole("invalid-json", std::string("the file is not valid JSON (") + simdjson::error_message(err) + ")");
      return;
    }
    std::string_view resource_type, bundle_type;
    if (doc["resourceType"].get(resource_type) || resource_type != "Bundle") {
      // A single resource.
      FileEntry e;
      e.file = path;
      e.ordinal = 1;
      e.line = 1;
      read_resource(e, trim(std::string_view(text)));
      entries.push_back(std::move(e));
      return;
    }
    if (doc["type"].get(bundle_type) ||
        (bundle_type != "batch" && bundle_type != "transaction" && bundle_type != "collection")) {
      whole("unsupported-bundle-type",
            "a Bundle of type '" + std::string(bundle_type) +
                "': only batch, transaction and collection Bundles are imported (each entry's resource "
                "as a new version)");
      return;
    }
    // The resources' exact text (FHIR decimals must survive): the on-demand parser points into the
    // file's bytes; the DOM parse above has validated all of them.
    simdjson::ondemand::parser parser;
    simdjson::ondemand::document od;
    simdjson::ondemand::object root;
    if (auto err = parser.iterate(text).get(od); err || od.get_object().get(root)) {
      whole("invalid-json", "the Bundle cannot be read entry by entry");
      return;
    }
    const char* counted_to = text.data();
    int64_t line_no = 1;
    auto line_of = [&](const char* at) {
      line_no += std::count(counted_to, at, '\n');
      counted_to = at;
      return line_no;
    };
    for (auto field : root) {
      std::string_view key;
      if (field.unescaped_key().get(key) || key != "entry") continue;
      simdjson::ondemand::array items;
      if (field.value().get_array().get(items)) break;
      for (auto item : items) {
        FileEntry e;
        e.file = path;
        e.in_bundle = true;
        e.ordinal = static_cast<int64_t>(entries.size()) + 1;
        simdjson::ondemand::value value;
        const char* at = nullptr;
        simdjson::ondemand::object entry;
        if (item.get(value) || value.current_location().get(at) || value.get_object().get(entry)) {
          e.line = at ? line_of(at) : line_no;
          set_problem(e, "bad-resource", "the Bundle entry is not an object", "");
          entries.push_back(std::move(e));
          continue;
        }
        e.line = line_of(at);
        std::string_view resource, method, url;
        bool resource_is_object = true;
        for (auto member : entry) {
          std::string_view name;
          if (member.unescaped_key().get(name)) continue;
          if (name == "resource") {
            simdjson::ondemand::object r;
            resource_is_object = !member.value().get_object().get(r) && !r.raw_json().get(resource);
          } else if (name == "request") {
            simdjson::ondemand::object request;
            if (member.value().get_object().get(request)) continue;
            for (auto r : request) {
              std::string_view k;
              if (r.unescaped_key().get(k)) continue;
              // Only for the message of an entry without a resource: a non-string is left out.
              if (k == "method" && r.value().get_string().get(method)) method = {};
              else if (k == "url" && r.value().get_string().get(url)) url = {};
            }
          }
        }
        if (!resource_is_object) {
          set_problem(e, "bad-resource", "the entry's resource is not a JSON object", "");
        } else if (resource.empty()) {
          set_problem(e, "no-resource",
                      method.empty() ? std::string("the entry has no resource")
                                     : fmt::format("the entry has no resource (request {} {}): only entries "
                                                   "carrying a resource are imported, not deletes or reads",
                                                   method, url),
                      "");
        } else {
          read_resource(e, resource);
        }
        entries.push_back(std::move(e));
      }
    }
  }
};

FileSource::FileSource(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    for (const auto& item : std::filesystem::directory_iterator(path, ec))
      if (item.is_regular_file() && is_listed_extension(item.path())) files_.push_back(item.path());
    if (ec) throw FileSourceError("cannot list " + path.string() + ": " + ec.message());
    std::sort(files_.begin(), files_.end(),
              [](const auto& a, const auto& b) { return a.filename() < b.filename(); });
  } else if (std::filesystem::is_regular_file(path, ec)) {
    files_.push_back(path);
  } else {
    throw FileSourceError("-s " + path.string() + ": no such file or directory");
  }
  for (const auto& f : files_) {
    auto size = std::filesystem::file_size(f, ec);
    sizes_.push_back(ec ? 0 : static_cast<int64_t>(size));
    bytes_total_ += sizes_.back();
  }
}

FileSource::~FileSource() = default;

bool FileSource::open_next_file() {
  if (next_file_ >= files_.size()) return false;
  auto open = std::make_unique<Open>();
  open->path = files_[next_file_++];
  open->ndjson = is_ndjson(open->path);
  if (open->ndjson) {
    open->in = std::make_unique<LineReader>(open->path);
  } else {
    open->load_json();
  }
  open_ = std::move(open);
  return true;
}

void FileSource::seek(const FilePosition& p) {
  if (p.file.empty()) return;
  auto it = std::find_if(files_.begin(), files_.end(), [&](const auto& f) { return f.filename() == p.file; });
  if (it == files_.end())
    throw FileSourceError("the recovery journal's checkpoint is in " + p.file +
                          ", which is no longer among the files to import");
  next_file_ = static_cast<size_t>(it - files_.begin());
  open_next_file();
  open_->skip(p.entries);
}

std::optional<FileEntry> FileSource::next() {
  for (;;) {
    if (open_)
      if (auto e = open_->next()) return e;
    if (!open_next_file()) return std::nullopt;
  }
}

int64_t FileSource::bytes_read() const {
  if (!open_) return 0;
  const size_t current = next_file_ - 1;  // open_ is files_[next_file_ - 1]
  int64_t done = 0;
  for (size_t i = 0; i < current; ++i) done += sizes_[i];
  // A JSON file is read whole when it is opened.
  return done + (open_->in ? std::min(open_->in->offset(), sizes_[current]) : sizes_[current]);
}

FilePosition FileSource::position() const {
  if (!open_) return {};
  return {open_->path.filename().string(), open_->read};
}

}  // namespace fhirshift::migrate
