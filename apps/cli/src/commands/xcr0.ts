import {
  InputError,
  archXsetbvCheck,
  describeXcr0Rule,
  guestSupportedXcr0,
  kvmSetXcrCheck,
  kvmSupportedXcr0,
  parseU64,
  u64Hex,
  type KvmVendor,
} from "@kvmx/core";
import { Option, type Command } from "commander";
import { CommandExit, ExitCode } from "../exit-codes.js";
import { toJson, type Io } from "../io.js";
import { loadProfile, PROFILE_HELP } from "./cpu.js";

/** How XCR0 arguments are read, for every option and argument that takes one. */
export const XCR0_INPUT_RULE = "hex, 0x optional: 27 means 0x27 (there is no decimal form)";

/** Parses an XCR0 value as the user typed it: hex with or without 0x (XCR0_INPUT_RULE). */
export function parseXcr0Arg(text: string): bigint {
  const t = text.trim();
  if (!/^(0x)?[0-9a-fA-F]+$/i.test(t)) throw new InputError(`"${text}" is not an XCR0 value (${XCR0_INPUT_RULE})`);
  return parseU64(t.startsWith("0x") || t.startsWith("0X") ? `0x${t.slice(2)}` : `0x${t}`, "XCR0");
}

interface CheckOptions {
  profile: string;
  kvm?: string;
  index: string;
  json?: boolean;
}

/**
 * `kvmx xcr0 check HEX --profile P [--kvm vmx|svm]`: would XSETBV accept this XCR0? Without --kvm the
 * architectural rules of the profile's CPU; with --kvm, KVM's __kvm_set_xcr for a guest whose host and
 * CPUID are the profile. Exit 0 when valid, 1 when a rule fails (like any check), 65 on bad input.
 */
export function register(program: Command, io: Io): void {
  const xcr0 = program.command("xcr0").description("XCR0 validity rules (XSETBV, KVM_SET_XCRS)");
  xcr0
    .command("check")
    .description("check an XCR0 value against the XSETBV rules; exit 1 when it would #GP")
    .argument("<hex>", `the XCR0 value: ${XCR0_INPUT_RULE}`)
    .requiredOption("--profile <name|file>", PROFILE_HELP)
    .addOption(new Option("--kvm <vendor>", "apply KVM's __kvm_set_xcr rules as the vmx or svm backend would").choices(["vmx", "svm"]))
    .option("--index <n>", "the XCR index (ECX), decimal", "0")
    .option("--json", "machine-readable output")
    .action(async (hex: string, opts: CheckOptions) => {
      const value = parseXcr0Arg(hex);
      const profile = await loadProfile(io, opts.profile);
      if (!/^\d+$/.test(opts.index)) throw new InputError(`--index "${opts.index}" is not a decimal number`);
      const index = Number(opts.index);
      let rules: string;
      let supported: bigint;
      let failedRule;
      if (opts.kvm === undefined) {
        rules = "architectural";
        supported = profile.supportedXcr0;
        failedRule = archXsetbvCheck(index, value, supported);
      } else {
        rules = `kvm-${opts.kvm}`;
        supported = guestSupportedXcr0(profile.cpuid, kvmSupportedXcr0(profile, opts.kvm as KvmVendor));
        failedRule = kvmSetXcrCheck(index, value, supported);
      }
      const valid = failedRule === undefined;
      if (opts.json) {
        io.out(toJson({ schemaVersion: 1, profile: profile.name, rules, index, xcr0: value, supported, valid, failedRule: failedRule ?? null }));
      } else if (valid) {
        io.out(`XCR0 ${u64Hex(value)} is valid for ${profile.name} (${rules} rules, supported ${u64Hex(supported)})\n`);
      } else {
        io.out(`XCR0 ${u64Hex(value)} is invalid for ${profile.name} (${rules} rules): ${failedRule} — ${describeXcr0Rule(failedRule!)}\n`);
      }
      if (!valid) throw new CommandExit(ExitCode.checkFailed);
    });
}
