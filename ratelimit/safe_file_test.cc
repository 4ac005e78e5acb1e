#include "ratelimit/safe_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

class SafeFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-safe-file.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string dir_;
};

TEST_F(SafeFileTest, SymlinksAreRefusedAndTheirTargetsUntouched) {
  const std::string target = dir_ + "/precious";
  std::ofstream(target) << "keep me";
  const std::string link = dir_ + "/table";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  auto fd = OpenOwnFile(link, O_RDWR | O_CREAT);
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.status().message().find("symbolic link"), std::string::npos) << fd.status();
  EXPECT_EQ(Read(target), "keep me");
  // A dangling one creates nothing.
  const std::string dangling = dir_ + "/dangling";
  ASSERT_EQ(symlink((dir_ + "/nothing").c_str(), dangling.c_str()), 0);
  EXPECT_FALSE(OpenOwnFile(dangling, O_RDWR | O_CREAT).ok());
  EXPECT_NE(access((dir_ + "/nothing").c_str(), F_OK), 0);
}

TEST_F(SafeFileTest, FilesOthersCanWriteAreRefused) {
  const std::string path = dir_ + "/t";
  std::ofstream(path) << "x";
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  auto fd = OpenOwnFile(path, O_RDWR);
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.status().message().find("writable by others"), std::string::npos);
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  fd = OpenOwnFile(path, O_RDWR);
  ASSERT_TRUE(fd.ok()) << fd.status();
  close(*fd);
  EXPECT_FALSE(OpenOwnFile(dir_, O_RDONLY).ok());  // not a regular file
}

TEST_F(SafeFileTest, FilesOfAnotherUserAreRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a file away";
  const std::string path = dir_ + "/t";
  std::ofstream(path) << "x";
  ASSERT_EQ(chown(path.c_str(), 65534, 65534), 0);  // nobody
  auto fd = OpenOwnFile(path, O_RDWR);
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.status().message().find("owned by uid 65534"), std::string::npos) << fd.status();
}

TEST_F(SafeFileTest, AtomicWritesReplaceAPlantedSymlinkNotItsTarget) {
  const std::string target = dir_ + "/precious";
  std::ofstream(target) << "keep me";
  const std::string path = dir_ + "/pid";
  ASSERT_EQ(symlink(target.c_str(), path.c_str()), 0);
  ASSERT_TRUE(WriteFileAtomically(path, "1234\n", 0644).ok());
  EXPECT_EQ(Read(target), "keep me");
  EXPECT_EQ(Read(path), "1234\n");
  struct stat st;
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(SafeFileTest, ASecondLockIsRefusedWithTheHoldersPid) {
  const std::string path = dir_ + "/x.lock";
  auto first = LockFile(path);
  ASSERT_TRUE(first.ok()) << first.status();
  // flock locks belong to the open file description: a second open (as a
  // second process would) is refused.
  auto second = LockFile(path);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("locked by pid " + std::to_string(getpid())),
            std::string::npos)
      << second.status();
  close(*first);
  auto third = LockFile(path);
  EXPECT_TRUE(third.ok()) << third.status();
  if (third.ok()) close(*third);
}

}  // namespace
}  // namespace sluice
