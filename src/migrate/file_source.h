// The reader of `migrate --sourceType Filesystem`: FHIR R4 resources from files.
//
// Accepted: ndjson (`*.ndjson`, one resource per line, blank lines ignored; `*.ndjson.gz` the same,
// gzip-compressed, as bulk exports are often stored) and JSON (`*.json`):
// a Bundle of type batch, transaction or collection (one resource per entry), or a single
// resource. A directory is read file by file in name order (not recursively). Every entry names
// its file and line; an entry that cannot be imported carries the reason instead of a resource, so
// the importer can quarantine it and go on.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fhirshift::migrate {

class FileSourceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One entry of a file: a resource to import, or why it cannot be.
struct FileEntry {
  std::filesystem::path file;
  int64_t ordinal = 0;  // 1-based: the line of an ndjson file (blank ones skipped), the Bundle entry
  int64_t line = 0;     // 1-based line where the entry starts
  bool in_bundle = false;

  // A resource: its type, id and JSON text, byte for byte as in the file.
  std::string type;
  std::string id;
  std::string json;

  // Why it cannot be imported: a stable code (invalid-json, bad-field, unknown-type, bad-resource,
  // oversized, unsupported-bundle-type, no-resource) and a message that names file and line.
  std::string reason;
  std::string problem;
  std::string excerpt;  // the start of the offending text, for the quarantine record

  bool ok() const { return reason.empty(); }
  // "data/patients.ndjson line 3", "data/tx.json entry 2 (line 17)".
  std::string where() const;
};

// How far a source has been read: `entries` entries of the file named `file`.
struct FilePosition {
  std::string file;  // file name (no directory); empty: before the first file
  int64_t entries = 0;
};

class FileSource {
 public:
  // `path`: one file (any extension; `*.ndjson[.gz]` is read as ndjson), or a directory whose
  // *.ndjson, *.ndjson.gz and *.json files are read in name order. Throws FileSourceError when the
  // path does not exist. A directory without such a file is an empty source (the legacy runbook
  // provisions a target by importing an empty folder).
  explicit FileSource(const std::filesystem::path& path);
  ~FileSource();
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  const std::vector<std::filesystem::path>& files() const { return files_; }

  // Skips what a previous run read up to `p`. Throws FileSourceError when p.file is not (any
  // longer) one of files().
  void seek(const FilePosition& p);
  // The next entry, or nullopt at the end of the last file. Throws FileSourceError when a file
  // cannot be read (missing, permissions): that is not bad input but a broken source.
  std::optional<FileEntry> next();
  // Where next() continues: what has been read so far.
  FilePosition position() const;
  // The size of all files on disk (compressed, for `.gz`), known up front, and how much of it has
  // been read so far (of a compressed file: the compressed bytes its reader has consumed); for the
  // progress line.
  int64_t bytes_total() const { return bytes_total_; }
  int64_t bytes_read() const;

 private:
  struct Open;  // the file being read
  bool open_next_file();

  std::vector<std::filesystem::path> files_;
  std::vector<int64_t> sizes_;  // of files_, in bytes
  int64_t bytes_total_ = 0;
  size_t next_file_ = 0;
  std::unique_ptr<Open> open_;
};

// Checks `text` as a resource to import and fills type, id and json of `entry`, or its reason and
// problem. Exposed for the tests.
void read_resource(FileEntry& entry, std::string_view text);

}  // namespace fhirshift::migrate
