import os from 'node:os';

export interface MachineInfo {
  nproc: number;
  cpu: string;
  memGiB: number;
  node: string;
  platform: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    nproc: os.availableParallelism(),
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
}

export function machineLine(m: MachineInfo): string {
  return `${m.nproc} CPUs (${m.cpu}), ${m.memGiB} GiB RAM, Node ${m.node}, ${m.platform}`;
}
