/** Where the lab reports what it is doing ("downloading …", "booting …"): one line per call, for stderr. */
export type Progress = (line: string) => void;

export const silent: Progress = () => {};
