// TaskModule: cascades — what a finished task sets off in the tasks that
// wait on it, its parent and its children — run as a queue of steps with a
// budget per engine turn.
//
// Clients can build dependency chains and parent trees of any length, so
// nothing here recurses: Finish queues steps, RunCascade takes them in
// order (breadth first) until kCascadeSlice units of work are done, and the
// engine runs the next slice in its next timer turn (Engine::RunTimers),
// with other clients' requests in between. Each slice is part of an
// ordinary group: a crash between slices loses nothing acknowledged, but
// leaves a cascade half done. Recovery then finds what is left from the
// task states alone (QueueRechecksAfterRecovery), because no finished task
// is forgotten by retention while a cascade is pending.
#include <algorithm>

#include "engine/tasks/tasks.h"

namespace shim::engine {

void TaskModule::RunCascade() {
  if (cascading_ || cascade_.empty()) return;
  cascading_ = true;
  size_t budget = kCascadeSlice;
  while (!cascade_.empty() && budget > 0) {
    // A step stays at the front while it runs: references into a deque
    // survive push_back, and a non-empty queue keeps retention deferred.
    if (RunStep(cascade_.front(), budget)) cascade_.pop_front();
  }
  cascading_ = false;
  if (!cascade_.empty()) return;
  std::vector<TaskQueue*> deferred = std::move(trim_deferred_);
  trim_deferred_.clear();
  for (TaskQueue* q : deferred) {
    q->trim_deferred = false;
    TrimRetention(*q);
  }
}

bool TaskModule::RunStep(CascadeStep& step, size_t& budget) {
  Task* t = Find(step.seq);
  if (!t) return true;  // cannot happen while retention is deferred; harmless
  switch (step.kind) {
    case CascadeStep::Kind::kDependents: {
      auto it = dependents_.find(step.seq);
      if (it == dependents_.end()) return true;
      // Pointers into the map's nodes stay valid while others are added;
      // nothing adds to the list of a finished task.
      const std::vector<uint64_t>& waiting = it->second;
      while (step.next < waiting.size() && budget > 0) {
        --budget;
        if (Task* d = Find(waiting[step.next++])) ResolveDependent(*t, *d);
      }
      if (step.next < waiting.size()) return false;
      dependents_.erase(step.seq);
      return true;
    }
    case CascadeStep::Kind::kParent:
      --budget;
      NotifyParent(*t);
      return true;
    case CascadeStep::Kind::kChildren: {
      const std::string reason = "parent " + TaskId(t->seq) +
                                 (t->state == TaskState::kCancelled ? " was cancelled" : " failed");
      const std::vector<uint64_t>& children = t->ext().children;
      while (step.next < children.size() && budget > 0) {
        --budget;
        if (Task* c = Find(children[step.next++])) CancelTree(*c, reason);
      }
      return step.next >= children.size();
    }
    case CascadeStep::Kind::kRecheck:
      --budget;
      Recheck(*t);
      return true;
  }
  return true;
}

void TaskModule::QueueRechecksAfterRecovery() {
  // Run after every task is loaded and the counters are recounted. In seq
  // order, so that a recovery's cascade goes the way the original did.
  std::vector<uint64_t> seqs;
  for (auto& [seq, t] : tasks_) {
    if (IsFinished(t.state) || !t.has_extra()) continue;
    const TaskExtra& e = t.ext();
    bool recheck = false;
    if (e.parent != 0) {
      const Task* p = Find(e.parent);
      recheck = p && IsFinished(p->state) && p->state != TaskState::kCompleted;
    }
    if (!recheck && t.state == TaskState::kWaiting) {
      recheck = e.unmet_dependencies == 0 && e.children_pending == 0;
      for (size_t i = 0; !recheck && !e.ignore_dependency_failure && i < e.depends_on.size(); ++i) {
        const Task* d = Find(e.depends_on[i]);
        recheck = d && IsFinished(d->state) && d->state != TaskState::kCompleted;
      }
    }
    for (size_t i = 0; !recheck && !e.ignore_dependency_failure && i < e.children.size(); ++i) {
      const Task* c = Find(e.children[i]);
      recheck = c && IsFinished(c->state) && c->state != TaskState::kCompleted;
    }
    if (recheck) seqs.push_back(seq);
  }
  std::sort(seqs.begin(), seqs.end());
  for (uint64_t seq : seqs) QueueStep(CascadeStep::Kind::kRecheck, seq);
}

void TaskModule::Recheck(Task& t) {
  // The same decisions as the steps the crash interrupted, read from states:
  // a failed or cancelled parent cancels, a failed dependency or child
  // fails, and a task with nothing left to wait for runs.
  if (IsFinished(t.state)) return;
  const TaskExtra& e = t.ext();
  if (const Task* p = e.parent ? Find(e.parent) : nullptr;
      p && IsFinished(p->state) && p->state != TaskState::kCompleted) {
    return CancelTree(t, "parent " + TaskId(p->seq) +
                             (p->state == TaskState::kCancelled ? " was cancelled" : " failed"));
  }
  if (!e.ignore_dependency_failure) {
    if (t.state == TaskState::kWaiting) {
      for (uint64_t seq : e.depends_on) {
        const Task* d = Find(seq);
        if (d && IsFinished(d->state) && d->state != TaskState::kCompleted)
          return ResolveDependent(*d, t);
      }
    }
    for (uint64_t seq : e.children) {
      const Task* c = Find(seq);
      if (c && IsFinished(c->state) && c->state != TaskState::kCompleted)
        return FailParentForChild(t, *c);
    }
  }
  if (t.state != TaskState::kWaiting || e.unmet_dependencies != 0 || e.children_pending != 0)
    return;
  if (!e.children.empty() && e.aggregate != Aggregate::kNone) return CompleteParentByAggregate(t);
  OnPrerequisiteDone(t);
}

}  // namespace shim::engine
