# Builds tools/ferretdb (a Go main embedding FerretDB v1) once into the build tree. Tests and the
# demo start it as the MongoDB-wire-compatible server; it is never installed system-wide.
find_program(GO_EXECUTABLE go HINTS /usr/local/go/bin REQUIRED)
set(FHIRSHIFT_FERRETDB_BIN ${CMAKE_BINARY_DIR}/tools/ferretdb-embedded CACHE INTERNAL "")
set(ferretdb_src ${CMAKE_SOURCE_DIR}/tools/ferretdb)
add_custom_command(
  OUTPUT ${FHIRSHIFT_FERRETDB_BIN}
  COMMAND ${CMAKE_COMMAND} -E env GOFLAGS=-mod=readonly
          ${GO_EXECUTABLE} build -trimpath -o ${FHIRSHIFT_FERRETDB_BIN} .
  WORKING_DIRECTORY ${ferretdb_src}
  DEPENDS ${ferretdb_src}/main.go ${ferretdb_src}/go.mod ${ferretdb_src}/go.sum
  COMMENT "Building the embedded FerretDB launcher (Go)"
  VERBATIM)
add_custom_target(ferretdb_embedded ALL DEPENDS ${FHIRSHIFT_FERRETDB_BIN})
