// Issue 11, round 4: what one io_uring submission of N non-blocking sends (one per loopback TCP socket) costs the
// sender against N send() calls, with a reader process on an epoll loop as the load tool has. Not part of the build.
//   gcc -O2 -o /tmp/uring-send-bench docs/uring-send-bench.c
//   /tmp/uring-send-bench <sockets> <rounds> <rounds per second> <0: send() each | 1: io_uring>
// e.g. 250 1000 100 0 and 250 1000 100 1 (the big room's 250 members per instance at 100 msg/s).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/io_uring.h>
#include <time.h>
#include <stdatomic.h>

static int N, ROUNDS, RATE, MODE;
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}

struct ring { int fd; unsigned *sq_head,*sq_tail,*sq_mask,*sq_array,*cq_head,*cq_tail,*cq_mask; struct io_uring_sqe *sqes; struct io_uring_cqe *cqes; unsigned entries; };
static int ring_init(struct ring *r, unsigned entries){
  struct io_uring_params p; memset(&p,0,sizeof p);
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
  r->fd = syscall(__NR_io_uring_setup, entries, &p); if (r->fd<0){perror("setup");return -1;}
  size_t sqsz = p.sq_off.array + p.sq_entries*sizeof(unsigned);
  size_t cqsz = p.cq_off.cqes + p.cq_entries*sizeof(struct io_uring_cqe);
  if (p.features & IORING_FEAT_SINGLE_MMAP){ if (cqsz>sqsz) sqsz=cqsz; cqsz=sqsz; }
  char *sq = mmap(0,sqsz,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_POPULATE,r->fd,IORING_OFF_SQ_RING);
  char *cq = (p.features & IORING_FEAT_SINGLE_MMAP)? sq : mmap(0,cqsz,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_POPULATE,r->fd,IORING_OFF_CQ_RING);
  r->sqes = mmap(0,p.sq_entries*sizeof(struct io_uring_sqe),PROT_READ|PROT_WRITE,MAP_SHARED|MAP_POPULATE,r->fd,IORING_OFF_SQES);
  r->sq_head=(unsigned*)(sq+p.sq_off.head); r->sq_tail=(unsigned*)(sq+p.sq_off.tail); r->sq_mask=(unsigned*)(sq+p.sq_off.ring_mask); r->sq_array=(unsigned*)(sq+p.sq_off.array);
  r->cq_head=(unsigned*)(cq+p.cq_off.head); r->cq_tail=(unsigned*)(cq+p.cq_off.tail); r->cq_mask=(unsigned*)(cq+p.cq_off.ring_mask); r->cqes=(struct io_uring_cqe*)(cq+p.cq_off.cqes);
  r->entries=p.sq_entries; return 0;
}

int main(int argc,char**argv){
  N=atoi(argv[1]); ROUNDS=atoi(argv[2]); RATE=atoi(argv[3]); MODE=atoi(argv[4]);
  int ls=socket(AF_INET,SOCK_STREAM,0); struct sockaddr_in a={0}; a.sin_family=AF_INET; a.sin_addr.s_addr=htonl(0x7f000001); a.sin_port=0;
  int one=1; setsockopt(ls,SOL_SOCKET,SO_REUSEADDR,&one,4); bind(ls,(void*)&a,sizeof a); listen(ls,4096); socklen_t al=sizeof a; getsockname(ls,(void*)&a,&al);
  pid_t child=fork();
  if(child==0){ // receiver: epoll loop reading all
    int ep=epoll_create1(0); int *cs=malloc(N*sizeof(int));
    for(int i=0;i<N;i++){cs[i]=socket(AF_INET,SOCK_STREAM,0); connect(cs[i],(void*)&a,sizeof a); struct epoll_event e={.events=EPOLLIN,.data.fd=cs[i]}; epoll_ctl(ep,EPOLL_CTL_ADD,cs[i],&e);}
    long total=0,expect=(long)N*ROUNDS*150; char buf[65536]; struct epoll_event ev[256];
    while(total<expect){int n=epoll_wait(ep,ev,256,-1); for(int i=0;i<n;i++){ssize_t r=read(ev[i].data.fd,buf,sizeof buf); if(r>0) total+=r;}}
    _exit(0);
  }
  int *ss=malloc(N*sizeof(int)); for(int i=0;i<N;i++){ss[i]=accept(ls,0,0); setsockopt(ss[i],IPPROTO_TCP,TCP_NODELAY,&one,4);}
  char msg[150]; memset(msg,'x',150);
  struct ring r; if(MODE==1 && ring_init(&r,1024)) return 1;
  if (MODE==1){ unsigned fds[1]; }
  struct rusage u0,u1; getrusage(RUSAGE_SELF,&u0); double t0=now(); long eagain=0;
  for(int k=0;k<ROUNDS;k++){
    double due=t0+(double)k/RATE; while(now()<due){ double d=due-now(); if(d>0){struct timespec ts={0,(long)(d*1e9)}; nanosleep(&ts,0);} }
    if(MODE==0){ for(int i=0;i<N;i++){ ssize_t s=send(ss[i],msg,150,MSG_DONTWAIT|MSG_NOSIGNAL); if(s!=150) eagain++; } }
    else {
      unsigned tail=*r.sq_tail;
      for(int i=0;i<N;i++){ unsigned idx=tail&*r.sq_mask; struct io_uring_sqe *q=&r.sqes[idx]; memset(q,0,sizeof *q);
        q->opcode=IORING_OP_SEND; q->fd=ss[i]; q->addr=(unsigned long)msg; q->len=150; q->msg_flags=MSG_DONTWAIT|MSG_NOSIGNAL; q->user_data=i; r.sq_array[idx]=idx; tail++; }
      atomic_store_explicit((_Atomic unsigned*)r.sq_tail,tail,memory_order_release);
      int ret=syscall(__NR_io_uring_enter,r.fd,N,0,0,0,0); if(ret!=N){fprintf(stderr,"enter %d %d\n",ret,errno);}
      unsigned h=*r.cq_head, t=atomic_load_explicit((_Atomic unsigned*)r.cq_tail,memory_order_acquire); int got=0;
      while(h!=t){ struct io_uring_cqe *c=&r.cqes[h&*r.cq_mask]; if(c->res!=150) eagain++; h++; got++; }
      atomic_store_explicit((_Atomic unsigned*)r.cq_head,h,memory_order_release);
      if(got!=N) fprintf(stderr,"got %d of %d cqes\n",got,N);
    }
  }
  getrusage(RUSAGE_SELF,&u1); double el=now()-t0;
  double cpu=(u1.ru_utime.tv_sec-u0.ru_utime.tv_sec)+(u1.ru_stime.tv_sec-u0.ru_stime.tv_sec)+((u1.ru_utime.tv_usec-u0.ru_utime.tv_usec)+(u1.ru_stime.tv_usec-u0.ru_stime.tv_usec))/1e6;
  int st; waitpid(child,&st,0);
  printf("mode %s N %d rounds %d: sender cpu %.3f s = %.2f us/send, elapsed %.1f, short %ld, ivcsw %ld\n",MODE?"uring":"send",N,ROUNDS,cpu,cpu*1e6/((double)N*ROUNDS),el,eagain,u1.ru_nivcsw-u0.ru_nivcsw);
  return 0;
}
