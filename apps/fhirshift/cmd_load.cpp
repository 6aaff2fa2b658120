#include <iostream>

#include "commands.h"

namespace fhirshift::cli {

// Placeholder until issue #7 lands: the subcommand exists so --help lists it.
void add_load(CLI::App& app, Action& action) {
  auto* sub = app.add_subcommand("load", "(not implemented yet: issue #7)");
  sub->allow_extras();
  sub->callback([&action] {
    action = [] {
      std::cerr << "fhirshift load: not implemented yet (issue #7)\n";
      return kExitFailure;
    };
  });
}

}  // namespace fhirshift::cli
