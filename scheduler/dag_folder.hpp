// DagSource: where the daemon's DAGs come from, behind an interface the Engine owns.
// DagFolder (make_dag_folder) is the folder of YAML files of `drover serve`: a scan loads
// every *.yaml / *.yml under it (within the DagLimits it is made with), and an inotify watch tells
// the Engine when files change (after a burst of changes settles, 150 ms). The watch follows the
// tree: a folder made or moved in later is watched with all under it, one removed or moved out is
// dropped, and a queue overflow re-watches the tree as it is. The Engine decides what
// a scan means (new DAG versions, removed DAGs, a broken file keeping its last good version). Runs
// on the Engine's io_context thread; not thread-safe.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "scheduler/dag.hpp"
#include "scheduler/dag_loader.hpp"

namespace boost::asio {
class io_context;
}

namespace drover {

class DagSource {
 public:
  struct Scan {
    std::map<std::string, DagPtr> dags;  // by file: the DAGs that loaded, ids unique
    // By file: load errors, and a DAG id defined by an earlier file (that file is not in dags).
    std::map<std::string, std::vector<Diagnostic>> errors;
    std::set<std::string> files;  // every DAG file there now, broken ones included
  };
  virtual ~DagSource() = default;
  // Reads every DAG file now.
  virtual Scan scan() = 0;
  // From now on calls `changed` on the io thread each time changes have settled.
  virtual void watch(std::function<void()> changed) = 0;
  // Stops watching; `changed` is not called after this returns.
  virtual void stop() = 0;
};

std::unique_ptr<DagSource> make_dag_folder(boost::asio::io_context& io, std::filesystem::path dir,
                                           const DagLimits& limits);

}  // namespace drover
