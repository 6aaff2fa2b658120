# cmake -DINPUT=<file> -DOUTPUT=<header> -DNAME=<identifier> -DNAMESPACE=<ns> -P EmbedText.cmake
# Writes a header holding the file's bytes as `inline constexpr std::string_view NAME`, so a page
# ships inside the binary (no file to install, nothing fetched at run time).
file(READ "${INPUT}" content)
set(delim "fhirshift_embed")
string(FIND "${content}" ")${delim}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains )${delim}\" and cannot be embedded as a raw string")
endif()
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cmake/EmbedText.cmake: edit the source file, not this one.\n"
  "#pragma once\n#include <string_view>\nnamespace ${NAMESPACE} {\n"
  "inline constexpr std::string_view ${NAME} = R\"${delim}(${content})${delim}\";\n}\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
