import type { CellSpec } from "../src/matrix/cell.js";
import type { CheckProvider, CheckSubject } from "../src/matrix/provider.js";
import { toyModel, toyStart, type ToyEvent, type ToyState } from "./toy-model.js";

/**
 * A CheckProvider over the toy model: design "toy-bug3" has a planted depth-3 bug, "toy-leak" a
 * depth-3 leak only on a -mapxf host, "toy-safe" none. Backend "toyB" masks guest APX (n/a cells).
 */
export function toyProvider(): CheckProvider {
  return {
    designs: ["toy-safe", "toy-bug3", "toy-leak"],
    backends: ["toyA", "toyB"],
    notApplicable(cell: CellSpec) {
      if (cell.guest.apx && !cell.host.cpuApx) return "host CPU has no APX to give the guest";
      if (cell.guest.apx && cell.backend === "toyB") return "toyB removes APX from the supported XCR0";
      return undefined;
    },
    subject(cell: CellSpec): CheckSubject {
      const model = toyModel({
        ...(cell.design === "toy-bug3" ? { bugX: 2 } : {}),
        ...(cell.design === "toy-leak" && cell.host.kernelApx ? { leakY: 2 } : {}),
      });
      const subject: CheckSubject<ToyState, ToyEvent> = {
        model,
        start: toyStart(),
        scenario: (events, expect) => `design: ${cell.design}\nevents:\n${events.map((e) => `  - ${e.op}\n`).join("")}expect: ${expect.violations.join(",")}\n`,
        costProbes: () => [
          { kind: "fastpath", setup: [{ op: "inc-x" }], trip: [{ op: "noop" }] },
          { kind: "full-exit", setup: [], trip: [{ op: "inc-y" }, { op: "arm" }] },
        ],
      };
      return subject as CheckSubject;
    },
  };
}
