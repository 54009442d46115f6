#!/usr/bin/env python3
"""Which B-trees the commits in a SQLite WAL dirtied: pages per commit, by table or index.

Usage: wal_commit_pages.py DB_COPY WAL_COPY
Copy the database and its -wal while a benchmark runs (crates/bench/run.sh keeps them in
target/bench-work), then run this on the copies. Reads the WAL frames of the current
generation, groups them by commit, and names each page from the dbstat table of the copy
with its WAL applied (Python's sqlite3 must have dbstat; Debian's has).
"""
import sys,struct,sqlite3,collections,shutil,os,tempfile
db,wal=sys.argv[1],sys.argv[2]
data=open(wal,'rb').read()
magic,ver,psz,ckseq,s1,s2,c1,c2=struct.unpack('>8I',data[:32])
frames=[];off=32
while off+24+psz<=len(data):
    pg,commit,fs1,fs2,k1,k2=struct.unpack('>6I',data[off:off+24])
    if (fs1,fs2)!=(s1,s2): break
    frames.append((pg,commit)); off+=24+psz
# commits
commits=[];cur=[]
for pg,c in frames:
    cur.append(pg)
    if c: commits.append(cur);cur=[]
print("page size",psz,"frames",len(frames),"commits",len(commits))
tmp=os.path.join(tempfile.mkdtemp(),"copy.db"); shutil.copy(db,tmp)
for s in ("-wal","-shm"):
    if os.path.exists(tmp+s): os.remove(tmp+s)
shutil.copy(wal,tmp+"-wal")
con=sqlite3.connect(tmp)
owner={}
for name,pageno,ptype in con.execute("select name,pageno,pagetype from dbstat"):
    owner[pageno]=(name,ptype)
by=collections.Counter(); n=0
for c in commits:
    for pg in set(c):
        by[owner.get(pg,("?",""))]+=1
    n+=1
tot=sum(by.values())
print("pages per commit %.1f"%(tot/n))
for k,v in by.most_common(): print("%6.2f %s"%(v/n,k))
