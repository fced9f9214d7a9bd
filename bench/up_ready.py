#!/usr/bin/env python3
"""Process start to ready file of `idprop up` (release build), median of 15."""
import subprocess, time, os, sys, statistics, tempfile
ts=[]
for i in range(15):
    d=tempfile.mkdtemp(); rf=os.path.join(d,'ready.json')
    t=time.perf_counter()
    p=subprocess.Popen([os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'target', 'release', 'idprop'),'up','--port','0','--quiet','--ready-file',rf,'--state-dir',d],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
    while not os.path.exists(rf): time.sleep(0.0005)
    ts.append((time.perf_counter()-t)*1000)
    p.terminate(); p.wait()
print("ready-file ms: median %.1f min %.1f max %.1f" % (statistics.median(ts), min(ts), max(ts)))
