#!/usr/bin/env python3
"""Golden data for the Rust langdetect port (src/verify/rules/langdetect/).

Runs the reference implementation -- Python langdetect 1.0.9 on CPython 3.11 with
`DetectorFactory.seed = 0`, exactly as the official IFEval checker calls it -- and
writes, next to the Rust module:

* golden.jsonl         one row per text: the text (or `parts` = [[piece, repeat], ...]
                       concatenated, for long texts), `detect` (or null), `error`
                       (the exception message, or null), `langs` = detect_langs as
                       [lang, prob, prob's IEEE-754 bits in hex], and `n_ngrams`
                       (number of n-grams Detector._extract_ngrams collects);
* rng_golden.json      first values of CPython's random.Random (random, getrandbits,
                       choice, gauss, reseeding);
* normalize_golden.txt every code point that NGram.normalize changes, as
                       "first last target" hex ranges;
* upper_golden.txt     the code points where str.isupper() is true (NGram.add_char's
                       capital-word test), as "first last" hex ranges.

Provenance / licence of the reference: langdetect 1.0.9 (Apache License 2.0,
(c) 2014-2015 Michal Danilak), a port of language-detection ((c) 2010-2014 Cybozu
Labs, Inc., Apache License 2.0). The corpus sentences below were written for this
test; the IFEval texts come from data/ifeval/.

    /work/venvs/ref/bin/python scripts/gen-langdetect-golden.py
"""

import json
import os
import random
import struct
import sys
import unicodedata

from langdetect import DetectorFactory, detect, detect_langs
from langdetect import detector_factory
from langdetect.lang_detect_exception import LangDetectException
from langdetect.utils.ngram import NGram

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT_DIR = os.path.join(ROOT, "src", "verify", "rules", "langdetect")
IFEVAL = os.path.join(ROOT, "data", "ifeval")


def bits(x):
    return "%016x" % struct.unpack("<Q", struct.pack("<d", x))[0]


# --------------------------------------------------------------------------- corpus

# (short, long) texts per language, written for this test.
LANGUAGES = {
    "es": (
        "¿Dónde está la biblioteca?",
        "El verano pasado viajamos por la costa de Galicia. Cada mañana caminábamos por la "
        "playa, comíamos pulpo en pequeñas tabernas y hablábamos con los pescadores, que nos "
        "contaban historias sobre tormentas y barcos perdidos. Fue un viaje inolvidable.",
    ),
    "fr": (
        "Je voudrais un café, s'il vous plaît.",
        "La ville s'éveille lentement : les boulangers sortent les premières baguettes, les "
        "enfants traînent leurs cartables vers l'école et les cafés installent leurs terrasses. "
        "À midi, tout le monde se retrouve autour d'une table pour déjeuner ensemble.",
    ),
    "de": (
        "Wie spät ist es jetzt?",
        "Gestern Abend haben wir im Garten gegrillt, obwohl es ziemlich kühl war. Meine "
        "Großmutter erzählte Geschichten aus ihrer Kindheit auf dem Bauernhof, und die Kinder "
        "hörten gespannt zu, bis sie schließlich müde ins Bett gingen.",
    ),
    "it": (
        "Dove si trova la stazione?",
        "Ogni domenica la nonna prepara la pasta fatta in casa e tutta la famiglia si riunisce "
        "intorno al grande tavolo della cucina. Si parla di calcio, di politica e dei vicini, "
        "mentre il profumo del ragù riempie la casa.",
    ),
    "pt": (
        "Obrigado pela sua ajuda.",
        "No sábado fomos à feira do bairro comprar frutas e legumes frescos. O vendedor de "
        "laranjas, sempre bem-humorado, insistiu para que provássemos as mangas da estação, "
        "que estavam doces como mel. Voltamos para casa com as sacolas cheias.",
    ),
    "ru": (
        "Спасибо за помощь!",
        "Зимой в нашей деревне всё покрыто снегом, и по утрам мы расчищаем дорожки к колодцу. "
        "Вечером семья собирается у печки, пьёт чай с вареньем и слушает, как дедушка "
        "рассказывает истории о войне и о своей молодости.",
    ),
    "ar": (
        "مرحبا، كيف حالك؟",
        "في الصباح الباكر يذهب الفلاحون إلى الحقول لري الأشجار وجمع الثمار قبل أن تشتد حرارة "
        "الشمس. وفي المساء يجتمع أهل القرية في الساحة ليتحدثوا عن أخبار اليوم ويشربوا الشاي.",
    ),
    "hi": (
        "आप कैसे हैं?",
        "हर साल दिवाली पर हमारा पूरा परिवार गाँव में इकट्ठा होता है। बच्चे पटाखे जलाते हैं, "
        "महिलाएँ मिठाइयाँ बनाती हैं और बुज़ुर्ग पुराने दिनों की कहानियाँ सुनाते हैं। यह त्योहार हमें "
        "एकता और प्रेम का संदेश देता है।",
    ),
    "bn": (
        "আপনি কেমন আছেন?",
        "বর্ষাকালে আমাদের গ্রামের নদী কানায় কানায় ভরে যায়। ছেলেমেয়েরা কলার ভেলায় চড়ে খেলা করে, "
        "আর মায়েরা উঠোনে বসে গল্প করতে করতে পিঠা বানান। সন্ধ্যায় ব্যাঙের ডাকে চারদিক মুখর হয়ে ওঠে।",
    ),
    "ja": (
        "ありがとうございます。",
        "昨日は友達と一緒に京都へ行きました。朝早く電車に乗って、金閣寺や清水寺を見学しました。"
        "お昼には湯豆腐を食べて、午後は古い町並みを散歩しながらお土産を買いました。"
        "とても楽しい一日でした。",
    ),
    "zh-cn": (
        "你今天吃饭了吗？",
        "我们学校旁边有一家小面馆，老板是从四川来的。每天中午，学生们都排队买他做的牛肉面，"
        "汤很香，面也很有嚼劲。老板说，他最大的愿望就是让每个人都能吃上一碗热乎乎的面。",
    ),
    "zh-tw": (
        "請問這裡可以拍照嗎？",
        "這個週末我們全家一起到陽明山爬山。山上的空氣很新鮮，沿途開滿了櫻花和杜鵑花。"
        "中午我們在溫泉旁邊的餐廳吃飯，下午泡了溫泉，回家的時候大家都覺得非常輕鬆愉快。",
    ),
    "ko": (
        "만나서 반갑습니다.",
        "주말마다 우리 가족은 근처 산에 올라갑니다. 정상에 오르면 도시 전체가 한눈에 보이고, "
        "시원한 바람이 땀을 식혀 줍니다. 내려오는 길에는 작은 식당에서 비빔밥과 된장찌개를 먹습니다.",
    ),
    "th": (
        "สวัสดีครับ ยินดีที่ได้รู้จัก",
        "ทุกเช้าคุณยายจะตื่นแต่เช้ามืดเพื่อใส่บาตรพระที่เดินผ่านหน้าบ้าน จากนั้นก็จะไปตลาดซื้อผักและปลา "
        "มาทำอาหารให้ลูกหลานรับประทาน บ้านของเราจึงเต็มไปด้วยกลิ่นหอมของอาหารอยู่เสมอ",
    ),
    "vi": (
        "Cảm ơn bạn rất nhiều.",
        "Mỗi buổi sáng, mẹ tôi dậy sớm để nấu phở cho cả nhà. Mùi thơm của nước dùng lan khắp "
        "căn bếp nhỏ, và chúng tôi ngồi quanh chiếc bàn gỗ, vừa ăn vừa kể cho nhau nghe những "
        "chuyện vui trong ngày.",
    ),
    "tr": (
        "Bugün hava çok güzel.",
        "Geçen yaz İstanbul'da yaşayan teyzemi ziyaret ettik. Her akşam Boğaz kıyısında "
        "yürüyüş yaptık, simit yedik ve martıların sesini dinledik. Teyzem bize eski "
        "mahallesini ve çocukluğunun geçtiği sokakları gösterdi.",
    ),
    "fi": (
        "Kiitos paljon avustasi.",
        "Kesällä vietämme aina muutaman viikon mökillä järven rannalla. Saunomme joka ilta, "
        "uimme viileässä vedessä ja grillaamme makkaraa. Öisin aurinko ei juuri laske, joten "
        "valvomme usein myöhään ja kuuntelemme lintujen laulua.",
    ),
    "sw": (
        "Habari yako, rafiki yangu?",
        "Kila asubuhi wanakijiji huenda shambani kulima mahindi na maharagwe. Watoto "
        "hutembea kwenda shuleni wakiimba nyimbo, na jioni familia hukusanyika pamoja "
        "kula chakula na kusimulia hadithi za zamani.",
    ),
    "el": (
        "Καλημέρα, τι κάνεις;",
        "Κάθε καλοκαίρι πηγαίνουμε στο νησί της γιαγιάς μου. Τα πρωινά κολυμπάμε στη "
        "θάλασσα, το μεσημέρι τρώμε φρέσκο ψάρι στην ταβέρνα του λιμανιού και το βράδυ "
        "καθόμαστε στην αυλή και κοιτάζουμε τα αστέρια.",
    ),
    "he": (
        "שלום, מה שלומך?",
        "בכל יום שישי אנחנו נוסעים לסבא וסבתא שגרים בקיבוץ בצפון. סבתא מכינה עוגת שמרים, "
        "וסבא לוקח אותנו לטייל בפרדס ולקטוף תפוזים. בערב כל המשפחה יושבת יחד לארוחה גדולה.",
    ),
    "fa": (
        "حال شما چطور است؟",
        "هر سال در روزهای نوروز به خانه پدربزرگ می‌رویم. مادربزرگ سبزی پلو با ماهی درست "
        "می‌کند و بچه‌ها در حیاط بازی می‌کنند. شب‌ها همه دور هم می‌نشینیم و شعرهای حافظ را می‌خوانیم.",
    ),
    "ur": (
        "آپ کیسے ہیں؟",
        "ہر سال عید کے موقع پر ہمارا پورا خاندان دادا جان کے گھر جمع ہوتا ہے۔ بچے نئے کپڑے "
        "پہن کر عیدی لیتے ہیں اور خواتین سویاں اور بریانی بناتی ہیں۔ یہ دن ہم سب کے لیے بہت خوشی کا ہوتا ہے۔",
    ),
    "ta": (
        "நீங்கள் எப்படி இருக்கிறீர்கள்?",
        "ஒவ்வொரு பொங்கல் பண்டிகைக்கும் நாங்கள் எங்கள் கிராமத்திற்குச் செல்வோம். வீட்டின் முன் "
        "கோலம் போட்டு, புதுப் பானையில் பொங்கல் வைத்து, மாடுகளுக்கு மாலை அணிவிப்போம். அந்த நாள் "
        "முழுவதும் மகிழ்ச்சியாக இருக்கும்.",
    ),
    "te": (
        "మీరు ఎలా ఉన్నారు?",
        "ప్రతి సంక్రాంతికి మేము మా అమ్మమ్మ గారి ఊరికి వెళ్తాము. ఇంటి ముందు రంగురంగుల ముగ్గులు వేసి, "
        "గాలిపటాలు ఎగురవేస్తాము. సాయంత్రం అందరం కలిసి పిండివంటలు తింటూ కబుర్లు చెప్పుకుంటాము.",
    ),
    "kn": (
        "ನೀವು ಹೇಗಿದ್ದೀರಿ?",
        "ನಮ್ಮ ಊರಿನಲ್ಲಿ ಪ್ರತಿ ವರ್ಷ ದಸರಾ ಹಬ್ಬವನ್ನು ಬಹಳ ಸಂಭ್ರಮದಿಂದ ಆಚರಿಸುತ್ತಾರೆ. ಬೀದಿಗಳನ್ನು ದೀಪಗಳಿಂದ "
        "ಅಲಂಕರಿಸಲಾಗುತ್ತದೆ ಮತ್ತು ಜನರು ಹೊಸ ಬಟ್ಟೆಗಳನ್ನು ಧರಿಸಿ ದೇವಸ್ಥಾನಕ್ಕೆ ಹೋಗುತ್ತಾರೆ.",
    ),
    "mr": (
        "तुम्ही कसे आहात?",
        "दरवर्षी गणपतीच्या सणाला आमच्या घरी खूप गर्दी असते. आई मोदक बनवते, बाबा मखर सजवतात "
        "आणि आम्ही मुले आरतीची तयारी करतो. दहा दिवस घरात आनंदाचे वातावरण असते.",
    ),
    "pa": (
        "ਤੁਸੀਂ ਕਿਵੇਂ ਹੋ?",
        "ਹਰ ਸਾਲ ਵਿਸਾਖੀ ਦੇ ਮੇਲੇ ਤੇ ਸਾਡਾ ਸਾਰਾ ਪਿੰਡ ਇਕੱਠਾ ਹੁੰਦਾ ਹੈ। ਗੱਭਰੂ ਭੰਗੜਾ ਪਾਉਂਦੇ ਹਨ, ਮੁਟਿਆਰਾਂ "
        "ਗਿੱਧਾ ਪਾਉਂਦੀਆਂ ਹਨ ਅਤੇ ਬਜ਼ੁਰਗ ਖੇਤਾਂ ਵਿੱਚ ਪੱਕੀ ਕਣਕ ਵੇਖ ਕੇ ਖੁਸ਼ ਹੁੰਦੇ ਹਨ।",
    ),
    "gu": (
        "તમે કેમ છો?",
        "નવરાત્રીના દિવસોમાં અમારા શહેરમાં દરેક શેરીમાં ગરબા થાય છે. લોકો રંગબેરંગી કપડાં પહેરીને "
        "આખી રાત નાચે છે અને માતાજીની આરતી કરે છે. આ તહેવાર અમને ખૂબ જ પ્રિય છે.",
    ),
    "ne": (
        "तपाईंलाई कस्तो छ?",
        "दसैँको बेला हामी सबै गाउँ फर्किन्छौँ। हजुरबुबाले सबैलाई टीका र जमरा लगाइदिनुहुन्छ, "
        "अनि हामी मासु र सेलरोटी खाएर पिङ खेल्छौँ। यो हाम्रो परिवारको सबैभन्दा रमाइलो समय हो।",
    ),
    "nl": (
        "Waar is het station?",
        "Op zondag fietsen we vaak langs de dijk naar het volgende dorp, waar een klein café "
        "heerlijke appeltaart met slagroom verkoopt. De wind is meestal tegen, maar het "
        "uitzicht over de polders maakt alles goed.",
    ),
    "pl": (
        "Dziękuję bardzo za pomoc.",
        "W każdą niedzielę babcia piecze sernik, a cała rodzina przychodzi na obiad. Po "
        "jedzeniu dziadek zabiera wnuki na spacer do lasu, gdzie zbierają grzyby i słuchają "
        "śpiewu ptaków.",
    ),
    "sv": (
        "Var ligger järnvägsstationen?",
        "På midsommarafton samlas hela släkten på landet. Vi dansar runt midsommarstången, "
        "äter sill och färskpotatis och dricker saft i solen. Natten är ljus och ingen vill "
        "gå och lägga sig.",
    ),
    "uk": (
        "Дякую, все добре.",
        "Щоліта ми їздимо до бабусі в село. Вранці допомагаємо їй на городі, вдень купаємося "
        "в річці, а ввечері сидимо на лавці біля хати й слухаємо, як співають солов'ї.",
    ),
    "bg": (
        "Благодаря, много съм добре.",
        "Всяка година през лятото ходим на море във Варна. Сутрин плуваме, следобед се "
        "разхождаме в Морската градина, а вечер ядем прясна риба в малък ресторант до пристанището.",
    ),
    "cs": (
        "Děkuji, mám se dobře.",
        "Každou sobotu chodíme s dědečkem na ryby k rybníku za vesnicí. Sedíme na břehu, "
        "povídáme si a čekáme, až něco zabere. Většinou nic nechytíme, ale stejně se vracíme domů spokojení.",
    ),
    "ro": (
        "Mulțumesc frumos pentru ajutor.",
        "În fiecare toamnă mergem la bunici la țară să culegem strugurii. Bunicul face vin în "
        "pivniță, iar bunica pregătește sarmale și cozonac. Seara stăm cu toții în curte și "
        "ascultăm povești despre vremurile de altădată.",
    ),
    "id": (
        "Terima kasih atas bantuan Anda.",
        "Setiap pagi ibu pergi ke pasar untuk membeli sayur dan ikan segar. Sepulang dari "
        "pasar, ia memasak nasi goreng dan sambal untuk sarapan keluarga, sementara anak-anak "
        "bersiap-siap berangkat ke sekolah.",
    ),
    "hu": (
        "Köszönöm szépen a segítséget.",
        "Nyaranta a Balatonnál töltünk egy hetet. Reggelente úszunk a tóban, délután "
        "lángost eszünk a strandon, este pedig a parton sétálunk és nézzük a naplementét.",
    ),
    "ca": (
        "Bon dia, com estàs?",
        "Cada estiu anem a passar uns dies a la Costa Brava. Al matí ens banyem a les cales, "
        "al migdia mengem arròs negre i a la tarda passegem pels carrers estrets dels pobles de pescadors.",
    ),
    "da": (
        "Tak for hjælpen.",
        "Om sommeren cykler vi ofte ud til stranden med en madkurv. Børnene bygger sandslotte, "
        "mens de voksne læser og drikker kaffe, og om aftenen griller vi pølser i haven.",
    ),
    "no": (
        "Takk for hjelpen.",
        "Hver vinter reiser vi til fjellet for å gå på ski. Vi bor i en liten hytte uten strøm, "
        "fyrer i peisen om kvelden og spiser kvikklunsj på toppen av fjellet.",
    ),
    "hr": (
        "Hvala vam na pomoći.",
        "Svako ljeto provodimo na otoku kod bake i djeda. Ujutro se kupamo u moru, poslijepodne "
        "beremo masline, a navečer jedemo ribu s roštilja u konobi kraj luke.",
    ),
    "tl": (
        "Salamat sa tulong mo.",
        "Tuwing Linggo ay nagsisimba kami ng aking pamilya at pagkatapos ay kumakain kami sa "
        "bahay ng aking lola. Nagluluto siya ng adobo at sinigang na talagang masarap.",
    ),
    "so": (
        "Mahadsanid caawimaaddaada.",
        "Subax kasta aabbahay wuxuu geeyaa geelii iyo idihii dhanka ceelka si ay u cabbaan. "
        "Carruurtuna waxay aadaan dugsiga quraanka, fiidkiina qoyska oo dhan ayaa wada cuna cashada.",
    ),
    "af": (
        "Baie dankie vir jou hulp.",
        "Elke Sondag kuier ons by my ouma op die plaas. Sy bak melktert en koeksisters, en die "
        "kinders speel buite tussen die bome terwyl die grootmense op die stoep koffie drink.",
    ),
    "sq": (
        "Faleminderit shumë për ndihmën.",
        "Çdo verë shkojmë në fshatin e gjyshes në jug. Mëngjeseve mbledhim fiq dhe rrush në "
        "kopsht, ndërsa mbrëmjeve ulemi në oborr dhe dëgjojmë këngët e vjetra.",
    ),
    "lt": (
        "Labai ačiū už pagalbą.",
        "Kiekvieną vasarą važiuojame pas senelius į kaimą. Rytais renkame uogas miške, o "
        "vakarais visi kartu sėdime prie ežero ir klausomės lakštingalų giesmių.",
    ),
    "lv": (
        "Liels paldies par palīdzību.",
        "Katru vasaru mēs braucam pie vecmāmiņas uz laukiem. No rīta lasām ogas mežā, bet "
        "vakarā visi kopā sēžam pie ugunskura un dziedam tautasdziesmas.",
    ),
    "et": (
        "Suur aitäh abi eest.",
        "Igal suvel sõidame vanaema juurde maale. Hommikuti korjame metsas mustikaid ja "
        "õhtuti istume saunas ning ujume järves, kuni päike loojub.",
    ),
    "sk": (
        "Ďakujem pekne za pomoc.",
        "Každé leto chodíme k starým rodičom na dedinu. Ráno zbierame v lese huby a večer "
        "sedíme pri ohni a počúvame, ako dedko rozpráva príbehy z mladosti.",
    ),
    "sl": (
        "Najlepša hvala za pomoč.",
        "Vsako poletje gremo k babici na deželo. Zjutraj nabiramo borovnice v gozdu, zvečer "
        "pa vsi skupaj sedimo na vrtu in poslušamo čričke.",
    ),
    "mk": (
        "Ви благодарам за помошта.",
        "Секое лето одиме кај баба ми во селото покрај Охридското Езеро. Наутро пливаме, "
        "попладне береме смокви, а навечер седиме во дворот и пиеме чај од планински билки.",
    ),
    "ml": (
        "നിങ്ങൾക്ക് സുഖമാണോ?",
        "ഓണക്കാലത്ത് ഞങ്ങളുടെ വീട്ടിൽ എല്ലാവരും ഒത്തുകൂടും. മുറ്റത്ത് പൂക്കളം ഇടുകയും "
        "വാഴയിലയിൽ സദ്യ ഉണ്ണുകയും ചെയ്യും. കുട്ടികൾ ഊഞ്ഞാലാടി കളിക്കും.",
    ),
    "cy": (
        "Diolch yn fawr iawn.",
        "Bob haf rydym yn mynd i aros gyda mam-gu ar y fferm yng ngogledd Cymru. Yn y bore "
        "rydym yn helpu gyda'r defaid, ac yn y nos rydym yn eistedd wrth y tân yn canu.",
    ),
    "en": (
        "Where is the train station?",
        "Every autumn my grandparents rake the leaves in their orchard and press apples into "
        "cider. The whole neighbourhood drops by to help, and by evening everyone sits around "
        "a bonfire, sharing stories and roasting chestnuts.",
    ),
}

SPECIAL = [
    ("empty", ""),
    ("space", " "),
    ("whitespace", " \t\n\r  \n\n   "),
    ("digits", "0123456789 42 3.14159 2024-01-01"),
    ("punctuation", "!!! ??? ... ,,, ;;; ::: --- *** ### @@@ (( )) [] {} <> / \\ | ~ ` ^"),
    ("unicode-punct", "“” ‘’ — – … • ‰ ′ ″ ‹ › ※ ‼ ⁇"),
    ("emoji-only", "😀😃🎉👍🏽🔥💯"),
    ("emoji-with-word", "👍 ok"),
    ("symbols", "∑∫√∞≠≈ ← → ↑ ↓ ★ ☆ ♠ ♥ € £ ¥ ©®™"),
    ("latin1-excluded", "«\u00a0»\u00a0°\u00a0«»"),
    ("latin1-excluded-french", "«\u00a0Bonjour\u00a0» dit-il, il fait 20\u00a0° à l'ombre."),
    ("single-a", "a"),
    ("single-A", "A"),
    ("single-I", "I"),
    ("ok-caps", "OK"),
    ("caps-words", "ABC DEF GHI"),
    ("all-caps-english", "THIS IS A SENTENCE WRITTEN ENTIRELY IN CAPITAL LETTERS FOR TESTING."),
    ("all-caps-russian", "ЭТО ПРЕДЛОЖЕНИЕ НАПИСАНО ЗАГЛАВНЫМИ БУКВАМИ ДЛЯ ПРОВЕРКИ."),
    ("title-case", "The Quick Brown Fox Jumps Over The Lazy Dog In The Park"),
    ("camel-case", "getElementById innerHTML addEventListener XMLHttpRequest JSONParser"),
    ("mixed-caps", "NASA and the ESA launched JWST; the UN, NATO and UNICEF commented."),
    ("double-spaces", "This  text   has    many     spaces      between       words."),
    ("tabs-newlines", "Line one\n\nLine two\tcolumn\r\nLine three"),
    ("hiragana", "あいうえお かきくけこ さしすせそ"),
    ("katakana", "コンピューター ソフトウェア インターネット"),
    ("bopomofo", "ㄅㄆㄇㄈ ㄉㄊㄋㄌ ㆠㆡㆢ"),
    ("hangul-jamo", "ㄱㄴㄷㄹ ᄀᄁᄂ"),
    ("cjk-ext-a", "㐀㐁㐂㐃 㑀㑁"),
    ("cjk-compat", "豈 更 車 賈"),
    ("fullwidth", "ＡＢＣ ａｂｃ １２３ ＨＥＬＬＯ ｗｏｒｌｄ"),
    ("romanian-comma-below", "Știință și țară: școală, țesătură, ștergar, oțet, așa."),
    ("romanian-cedilla", "Ştiinţă şi ţară: şcoală, ţesătură, ştergar, oţet, aşa."),
    ("farsi-yeh", "یکی بود یکی نبود، زیر گنبد کبود"),
    ("arabic-yeh", "يكي بود يكي نبود، زير گنبد كبود"),
    ("vietnamese-u1exx-heavy", "ở ề ộ ữ ặ ẫ ỵ ỹ ạ ả ấ ầ ẩ ẫ ậ ắ ằ ẳ ẵ ặ ẹ ẻ ẽ ế ề ể ễ ệ ỉ ị ọ ỏ ố ồ"),
    ("latin-ext-additional-low", "Ḁḁ Ḃḃ Ḉḉ Ṁṁ Ẁẁ Ẅẅ"),
    ("greek-extended", "Ἀθῆναι ἐν τῇ ἀρχαίᾳ Ἑλλάδι ἦσαν πόλις"),
    ("armenian", "Բարև ձեզ, ինչպես եք?"),
    ("georgian", "გამარჯობა, როგორ ხარ?"),
    ("amharic", "ሰላም እንዴት ነህ?"),
    ("khmer", "សួស្តី តើអ្នកសុខសប្បាយទេ?"),
    ("sinhala", "ආයුබෝවන්, ඔබට කොහොමද?"),
    ("mongolian-script", "ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ"),
    ("math-alnum", "𝐇𝐞𝐥𝐥𝐨 𝑤𝑜𝑟𝑙𝑑 𝔉𝔯𝔞𝔨𝔱𝔲𝔯"),
    ("private-use", "\ue000\ue001\uf8ff"),
    ("control-chars", "\x00\x01\x02 hello \x7f world \x1b[0m"),
    ("replacement-char", "\ufffd\ufffd abc \ufffd"),
    ("bom", "\ufeffHello there, how are you doing today?"),
    ("zero-width", "zero\u200bwidth\u200cjoiner\u200dtest\u2060word"),
    ("combining-only", "\u0300\u0301\u0303\u0309\u0323"),
]

MIXED = [
    ("en-with-ru-word", "I bought a matryoshka doll; the seller said «спасибо» and smiled."),
    ("ru-with-en-words", "Вчера я скачал новую версию Python и установил пакет numpy через pip."),
    ("hi-with-en-words", "मैंने कल नया laptop खरीदा और उस पर Windows install किया।"),
    ("ja-with-en-words", "今日はGitHubでPull Requestを作成して、CIのテストがpassしました。"),
    ("zh-with-en-words", "我们用Python和PyTorch训练了一个deep learning模型。"),
    ("ko-with-en-words", "오늘 회의에서 new feature에 대해 discussion을 했습니다."),
    ("ar-with-en-words", "استخدمنا برنامج Excel لتحليل البيانات ثم أرسلنا التقرير بالبريد."),
    ("th-with-en-words", "วันนี้ฉันไปประชุม online ผ่าน Zoom กับทีมงาน"),
    ("greeting-mix", "Hello мир 世界 مرحبا नमस्ते こんにちは 안녕하세요 שלום"),
    ("en-then-zh", "The meeting is tomorrow. 明天下午三点在会议室开会，请准时参加。"),
    ("zh-then-en", "明天下午三点在会议室开会。Please bring your laptop and the printed report."),
    ("es-en-codeswitch", "Vamos a la playa this weekend porque the weather va a estar perfecto."),
    ("fr-en-codeswitch", "C'est vraiment cool, mais honestly je pense que c'est too expensive."),
    ("de-en-tech", "Das Deployment ist fehlgeschlagen, weil der Build-Server kein Update hatte."),
    ("latin-vs-cyrillic-balance", "abc def ghi абв где жзи"),
    ("latin-minority-in-cjk", "日本語の文章にabcが少し入っています。東京大阪京都名古屋福岡札幌"),
    ("latin-exact-half", "ab абвг"),
    ("code-snippet", "def main():\n    print('hello world')\n    return 0\n\nif __name__ == '__main__':\n    main()"),
    ("json-snippet", '{"name": "Alice", "age": 30, "languages": ["en", "fr"], "active": true}'),
    ("markdown", "# Title\n\n* **bold item** with *emphasis*\n* `code` and [link](page)\n\n> quote here"),
    ("html", "<html><body><p class=\"intro\">Welcome to our website!</p></body></html>"),
]

URLS_MAILS = [
    ("url-in-sentence", "Visit https://example.com/path/to/page?query=1&lang=en#section for details."),
    ("url-only", "https://www.example.org/index.html"),
    ("url-http", "see http://foo.bar/baz and http://x.y/z?a=b;c=d+e~f for more information"),
    ("url-uppercase-scheme", "HTTP://EXAMPLE.COM/INDEX and Https://Example.com/Page are not removed"),
    ("url-no-body", "http:// and https:// alone stay in the text"),
    ("url-httpx", "httpx://example.com and htp://typo.com are not urls"),
    ("url-unicode-path", "Read https://ru.wikipedia.org/wiki/Россия today"),
    ("url-percent", "Open https://example.com/a%20b/c%2Fd?x=%E4%B8%AD please"),
    ("url-adjacent", "https://a.comhttps://b.com text after"),
    ("url-in-parens", "(see https://example.com/page) and [https://example.org/x]."),
    ("url-japanese", "詳しくは https://example.jp/news/2024/01/article.html をご覧ください。"),
    ("email-in-sentence", "Contact john.doe@example.com or jane_smith-99@mail.example.co.uk today."),
    ("email-only", "someone@example.com"),
    ("email-short", "a@b"),
    ("email-short2", "ab@cd"),
    ("email-short3", "x@y.z"),
    ("email-double-at", "first@second@third.org and more words here"),
    ("email-dot-end", "name@domain. is odd"),
    ("email-underscore-domain", "reach me at foo@bar_baz-qux right now"),
    ("email-long-local", "a" * 70 + "@example.com is a long address"),
    ("email-local-64", "b" * 64 + "@example.com exactly sixty-four"),
    ("email-long-domain", "user@" + "d" * 300 + ".com long domain test words"),
    ("email-long-domain-dots", "user@" + "e" * 200 + "." + "f" * 300 + " after the domain"),
    ("email-domain-255", "user@" + "g" * 255 + "h" * 3 + " boundary"),
    ("email-in-russian", "Пишите на адрес ivan.petrov@mail.ru в любое время."),
    ("at-signs", "@@@ @ user@ @domain"),
    ("url-and-email", "Mail info@example.com or visit https://example.com/contact?from=info@example.com now."),
    ("url-long", "prefix https://example.com/" + "a" * 2100 + " suffix words in english here"),
    ("url-exactly-limit", "go https://" + "b" * 2076 + "c" * 10 + " done and dusted"),
]

LONG_PARTS = [
    # Truncation: only the first 10 000 code points (after URL/e-mail removal) count.
    ("long-en-then-ja", [[LANGUAGES["en"][1] + " ", 60], [LANGUAGES["ja"][1], 80]]),
    ("long-ja-then-en", [[LANGUAGES["ja"][1], 120], [LANGUAGES["en"][1] + " ", 80]]),
    ("long-urls-then-de", [["https://example.com/" + "x" * 500 + " ", 30], [LANGUAGES["de"][1] + " ", 60]]),
    ("long-fr", [[LANGUAGES["fr"][1] + " ", 70]]),
    ("long-ru-10000-boundary", [["а", 9999], [" hello world and more english words", 1]]),
    ("long-spaces", [["word  ", 3000], [LANGUAGES["es"][1], 3]]),
    ("long-mails-then-it", [["someone.else@example.com ", 500], [LANGUAGES["it"][1] + " ", 20]]),
]


def corpus():
    rows = []
    for name in ("input_response_data_text_bison.jsonl",):
        with open(os.path.join(IFEVAL, name), encoding="utf-8") as f:
            for i, line in enumerate(f):
                rows.append({"id": f"ifeval-response-{i}", "text": json.loads(line)["response"]})
    with open(os.path.join(IFEVAL, "input_data.jsonl"), encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            rows.append({"id": f"ifeval-prompt-{d['key']}", "text": d["prompt"]})
    for lang, (short, long) in LANGUAGES.items():
        rows.append({"id": f"lang-{lang}-short", "text": short})
        rows.append({"id": f"lang-{lang}-long", "text": long})
        # First word only, and the text with every letter decomposed (NFD), which
        # exercises NGram.normalize_vi for Latin scripts.
        rows.append({"id": f"lang-{lang}-word", "text": short.split()[0]})
        nfd = unicodedata.normalize("NFD", long)
        if nfd != long:
            rows.append({"id": f"lang-{lang}-nfd", "text": nfd})
        rows.append({"id": f"lang-{lang}-upper", "text": long.upper()})
    for rid, text in SPECIAL + MIXED + URLS_MAILS:
        rows.append({"id": rid, "text": text})
    for rid, parts in LONG_PARTS:
        rows.append({"id": rid, "parts": parts})
    # Short random slices of the multilingual texts: 1-12 characters, where the
    # sampling and the thresholds are most fragile.
    rnd = random.Random(20240601)
    pool = [t for pair in LANGUAGES.values() for t in pair]
    for i in range(150):
        t = rnd.choice(pool)
        n = rnd.randint(1, 12)
        start = rnd.randrange(max(1, len(t) - n))
        rows.append({"id": f"slice-{i}", "text": t[start:start + n]})
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    return rows


def text_of(row):
    if "text" in row:
        return row["text"]
    return "".join(piece * n for piece, n in row["parts"])


def reference(text):
    out = {}
    try:
        out["detect"] = detect(text)
        out["error"] = None
    except LangDetectException as e:
        out["detect"] = None
        out["error"] = str(e)
    try:
        out["langs"] = [[l.lang, l.prob, bits(l.prob)] for l in detect_langs(text)]
    except LangDetectException as e:
        assert out["error"] == str(e)
        out["langs"] = None
    d = detector_factory._factory.create()
    d.append(text)
    d.cleaning_text()
    out["n_ngrams"] = len(d._extract_ngrams())
    return out


# ------------------------------------------------------------------------ RNG golden

def rng_golden():
    g = {"random": []}
    for seed in (0, 1, 42, 2**32 - 1, 2**32, 12345678901234, 2**64 - 1):
        r = random.Random(seed)
        g["random"].append({"seed": seed, "values": [bits(r.random()) for _ in range(12)]})
    r = random.Random(0)
    ks = [1, 2, 3, 5, 8, 13, 16, 31, 32, 0, 33, 48, 63, 64, 7, 20, 1, 32]
    g["getrandbits"] = {"k": ks, "values": ["%x" % r.getrandbits(k) for k in ks]}
    r = random.Random(0)
    g["choice"] = []
    for n in (1, 2, 3, 5, 7, 10, 100, 1000, 4097, 65536, 100000, 3):
        g["choice"].append({"n": n, "picks": [r.choice(range(n)) for _ in range(8)]})
    r = random.Random(0)
    g["gauss"] = [bits(r.gauss()) for _ in range(15)]
    r = random.Random(0)
    r.gauss()
    r.seed(0)
    g["reseed_mixed"] = [bits(r.gauss(2.0, 0.5)), bits(r.random()),
                         bits(r.gauss(2.0, 0.5)), bits(r.gauss(2.0, 0.5))]
    return g


# ------------------------------------------------------------------ normalize golden

def normalize_ranges():
    lines = []
    cur = None  # [first, last, target]
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:  # not representable in Rust strings
            continue
        t = NGram.normalize(chr(cp))
        if t == chr(cp):
            continue
        if cur and cur[1] == cp - 1 and cur[2] == ord(t):
            cur[1] = cp
        else:
            if cur:
                lines.append(cur)
            cur = [cp, cp, ord(t)]
    lines.append(cur)
    return lines


def baked_language_order():
    """Language order stored in profiles.bin (see gen-langdetect-profiles.py)."""
    with open(os.path.join(OUT_DIR, "profiles.bin"), "rb") as f:
        data = f.read()
    assert data[:12] == b"LDPROF1\nLANG"
    pos = 12

    def varint():
        nonlocal pos
        n = shift = 0
        while True:
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    langs = []
    for _ in range(varint()):
        size = varint()
        langs.append(data[pos:pos + size].decode())
        pos += size
        for _ in range(3):
            varint()
    return langs


def upper_ranges():
    ranges, start = [], None
    for cp in range(0x110001):
        up = cp < 0x110000 and chr(cp).isupper()
        if up and start is None:
            start = cp
        elif not up and start is not None:
            ranges.append((start, cp - 1))
            start = None
    return ranges


def main():
    assert sys.version_info[:2] == (3, 11), "the reference checker runs Python 3.11"
    DetectorFactory.seed = 0
    detector_factory.init_factory()
    # The language order (os.listdir order of langdetect's profiles directory)
    # decides the summation order of every normalisation, hence the last bits of the
    # probabilities: the golden values must come from the order baked into
    # profiles.bin.
    assert detector_factory._factory.get_lang_list() == baked_language_order(), (
        "langdetect loads its profiles in another order here than the one baked into "
        "profiles.bin: rerun gen-langdetect-profiles.py in this environment first")

    rows = corpus()
    with open(os.path.join(OUT_DIR, "golden.jsonl"), "w", encoding="utf-8") as f:
        for row in rows:
            row.update(reference(text_of(row)))
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    with open(os.path.join(OUT_DIR, "rng_golden.json"), "w") as f:
        json.dump(rng_golden(), f, indent=1)
        f.write("\n")

    with open(os.path.join(OUT_DIR, "normalize_golden.txt"), "w") as f:
        f.write("# NGram.normalize(chr(cp)) != chr(cp): first last target (hex code points)\n")
        for first, last, target in normalize_ranges():
            f.write(f"{first:x} {last:x} {target:x}\n")

    with open(os.path.join(OUT_DIR, "upper_golden.txt"), "w") as f:
        f.write("# chr(cp).isupper() under CPython 3.11: first last (hex code points)\n")
        for first, last in upper_ranges():
            f.write(f"{first:x} {last:x}\n")

    results = {}
    for row in rows:
        key = row["detect"] or row["error"]
        results[key] = results.get(key, 0) + 1
    print(f"{len(rows)} golden rows;", dict(sorted(results.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
