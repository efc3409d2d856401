import re, collections, sys
f, n = sys.argv[1], int(sys.argv[2])
fn_names = {}
calls = collections.Counter()
cur_cfn = None
for line in open(f):
    m = re.match(r'^(c?fn)=\((\d+)\)(?: (.*))?', line)
    if m:
        kind, idx, name = m.groups()
        if name: fn_names[idx] = name
        if kind == 'cfn': cur_cfn = idx
        continue
    m = re.match(r'^calls=(\d+)', line)
    if m and cur_cfn:
        calls[fn_names.get(cur_cfn)] += int(m.group(1))
for name in ['mi_malloc_aligned', 'mi_realloc_aligned', 'mi_zalloc_aligned', 'mi_free', 'clock_gettime@@GLIBC_2.17']:
    print(name, round(calls[name] / n, 2))
