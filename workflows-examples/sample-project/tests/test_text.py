import unittest

import text


class TextTest(unittest.TestCase):
    def test_slug(self):
        self.assertEqual(text.slug("Hello Hive World"), "hello-hive-world")

    def test_shout(self):
        self.assertEqual(text.shout("go"), "GO!")
