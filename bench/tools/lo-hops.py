#!/usr/bin/env python3
"""Where one call's time goes between processes, from a loopback capture.

    tcpdump -i lo -n -tt -q 'tcp and (tcp[tcpflags] & tcp-push != 0)' > /tmp/lo.txt &
    BENCH_SUITES=cluster BENCH_INFLIGHT=1 BENCH_PLACEMENTS=cross-node npm run bench; pkill tcpdump
    python3 bench/tools/lo-hops.py /tmp/lo.txt

Splits the capture into sessions (gaps > 0.3 s) and prints, per session, the most frequent
transitions between consecutive data segments (src>dst ports) with the median gap: at K=1 the
segments of one call follow each other, so each line is one hop or one process's turnaround.
"""
import sys, collections, statistics
pk=[]
for line in open(sys.argv[1]):
    p=line.split()
    if len(p)<7 or p[1]!='IP': continue
    t=float(p[0]); src=p[2].rsplit('.',1)[1]; dst=p[4].rstrip(':').rsplit('.',1)[1]; n=int(p[6])
    if n==0: continue
    pk.append((t,src,dst,n))
# split into sessions by gaps > 0.3 s
sessions=[[]]
for x in pk:
    if sessions[-1] and x[0]-sessions[-1][-1][0]>0.3: sessions.append([])
    sessions[-1].append(x)
for s in sessions:
    if len(s)<2000: continue
    trans=collections.defaultdict(list)
    for a,b in zip(s,s[1:]):
        trans[(a[1]+'>'+a[2],b[1]+'>'+b[2])].append((b[0]-a[0])*1e6)
    top=sorted(trans.items(), key=lambda kv:-len(kv[1]))[:12]
    print('session', len(s), 'packets, %.2fs'%(s[-1][0]-s[0][0]))
    for (a,b),v in top:
        print('  %-13s -> %-13s n=%6d median %7.1f us' % (a,b,len(v),statistics.median(v)))
