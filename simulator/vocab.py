"""Words the simulator draws from: applicants' names, hamlets, procedures and their results.

Family names lean to those common in Cao Bằng (Tày and Nùng families) so that the seeded
personal data looks like the province's; procedure names are those of the national
procedure database for the configured fields, with a generic fallback for other fields.
"""
from __future__ import annotations

FAMILY_NAMES = (
    ("Nông", 9), ("Hoàng", 9), ("Lương", 6), ("Đàm", 5), ("Triệu", 5), ("Lục", 4), ("Bế", 4),
    ("Hà", 4), ("Nguyễn", 8), ("Lý", 3), ("Lâm", 3), ("Mã", 2), ("Sầm", 2), ("Vi", 2), ("La", 2),
    ("Phùng", 2), ("Trần", 4), ("Lê", 3), ("Phạm", 2), ("Đinh", 2), ("Ngô", 1), ("Vũ", 2),
    ("Đặng", 2), ("Bùi", 1), ("Đỗ", 1), ("Chu", 1), ("Dương", 2), ("Lưu", 1),
)
MIDDLE_NAMES = {
    "male": ("Văn", "Đức", "Minh", "Quang", "Hữu", "Thanh", "Xuân", "Công", "Văn", "Văn"),
    "female": ("Thị", "Ngọc", "Thu", "Thanh", "Hồng", "Kim", "Minh", "Phương", "Thị", "Thị"),
}
GIVEN_NAMES = {
    "male": (
        "An", "Bình", "Cường", "Dũng", "Đạt", "Giang", "Hải", "Hiếu", "Hùng", "Huy", "Khánh", "Kiên",
        "Lâm", "Long", "Mạnh", "Nam", "Nghĩa", "Phong", "Quân", "Sơn", "Tài", "Thắng", "Thành",
        "Tiến", "Toàn", "Trung", "Tuấn", "Việt", "Vinh", "Khải", "Lợi", "Phúc", "Quyết", "Thịnh",
    ),
    "female": (
        "Anh", "Chi", "Dung", "Duyên", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa", "Hương", "Huyền", "Lan",
        "Linh", "Loan", "Mai", "Nga", "Ngân", "Nhung", "Oanh", "Phượng", "Quỳnh", "Tâm", "Thảo",
        "Thủy", "Trang", "Tuyết", "Vân", "Yến", "Liên", "Mơ", "Nhàn", "Sen", "Thơm", "Lụa",
    ),
}

HAMLETS = (
    "Nà Pò", "Bản Chang", "Pác Bó", "Nà Mằn", "Lũng Rỳ", "Khau Cải", "Bó Khoang", "Nà Rị", "Pò Peo",
    "Cốc Lùng", "Nà Đoỏng", "Phiêng Pằn", "Khuổi Tủng", "Bản Giới", "Nà Lạn", "Lũng Pảng",
    "Nà Thin", "Pác Nặm", "Cốc Phường", "Bản Sáng", "Nà Kéo", "Khuổi Khon", "Pò Rẫy", "Nặm Nhũng",
)
HAMLETS_PER_COMMUNE = 6

# Fields whose department a name match does not find: a word of that department's name.
FIELD_DEPARTMENT_HINTS = {
    "HT": "Tư pháp", "CT": "Tư pháp", "LLTP": "Tư pháp", "DD": "Tài nguyên", "DKKD": "Kế hoạch",
    "BTXH": "Lao động", "NCC": "Lao động", "GT": "Giao thông",
}

SECOND_RESULT_DOCUMENT = "Phiếu kiểm soát quá trình giải quyết hồ sơ"

# (procedure name, result document) per field code of config/province.yaml
PROCEDURES = {
    "HT": (
        ("Đăng ký khai sinh", "Giấy khai sinh"),
        ("Đăng ký kết hôn", "Giấy chứng nhận kết hôn"),
        ("Đăng ký khai tử", "Trích lục khai tử"),
        ("Cấp bản sao trích lục hộ tịch", "Bản sao trích lục hộ tịch"),
        ("Cấp Giấy xác nhận tình trạng hôn nhân", "Giấy xác nhận tình trạng hôn nhân"),
        ("Đăng ký thay đổi, cải chính, bổ sung thông tin hộ tịch", "Trích lục thay đổi, cải chính hộ tịch"),
    ),
    "CT": (
        ("Chứng thực bản sao từ bản chính giấy tờ, văn bản", "Bản sao có chứng thực"),
        ("Chứng thực chữ ký trong các giấy tờ, văn bản", "Văn bản đã chứng thực chữ ký"),
        ("Chứng thực hợp đồng, giao dịch liên quan đến tài sản là động sản", "Hợp đồng đã chứng thực"),
        ("Chứng thực việc sửa đổi, bổ sung, hủy bỏ hợp đồng, giao dịch", "Văn bản đã chứng thực"),
    ),
    "DD": (
        ("Đăng ký đất đai, tài sản gắn liền với đất lần đầu", "Giấy chứng nhận quyền sử dụng đất"),
        ("Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất", "Giấy chứng nhận đã xác nhận thay đổi"),
        ("Chuyển mục đích sử dụng đất", "Quyết định cho phép chuyển mục đích sử dụng đất"),
        ("Hòa giải tranh chấp đất đai", "Biên bản hòa giải tranh chấp đất đai"),
        ("Cấp đổi Giấy chứng nhận quyền sử dụng đất", "Giấy chứng nhận quyền sử dụng đất cấp đổi"),
    ),
    "XD": (
        ("Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ", "Giấy phép xây dựng"),
        ("Cấp giấy phép sửa chữa, cải tạo công trình", "Giấy phép sửa chữa, cải tạo"),
        ("Thẩm định báo cáo nghiên cứu khả thi đầu tư xây dựng", "Thông báo kết quả thẩm định"),
        ("Cấp chứng chỉ hành nghề hoạt động xây dựng", "Chứng chỉ hành nghề hoạt động xây dựng"),
    ),
    "DKKD": (
        ("Đăng ký thành lập hộ kinh doanh", "Giấy chứng nhận đăng ký hộ kinh doanh"),
        ("Đăng ký thay đổi nội dung đăng ký hộ kinh doanh", "Giấy chứng nhận đăng ký hộ kinh doanh"),
        ("Đăng ký thành lập doanh nghiệp tư nhân", "Giấy chứng nhận đăng ký doanh nghiệp"),
        ("Đăng ký thay đổi nội dung đăng ký doanh nghiệp", "Giấy xác nhận thay đổi nội dung đăng ký doanh nghiệp"),
        ("Thông báo tạm ngừng kinh doanh", "Giấy xác nhận tạm ngừng kinh doanh"),
    ),
    "BTXH": (
        ("Thực hiện, điều chỉnh, thôi hưởng trợ cấp xã hội hằng tháng", "Quyết định trợ cấp xã hội"),
        ("Hỗ trợ chi phí mai táng cho đối tượng bảo trợ xã hội", "Quyết định hỗ trợ chi phí mai táng"),
        ("Xác định, xác định lại mức độ khuyết tật và cấp Giấy xác nhận khuyết tật", "Giấy xác nhận khuyết tật"),
        ("Trợ giúp xã hội khẩn cấp về hỗ trợ làm nhà ở", "Quyết định hỗ trợ làm nhà ở"),
    ),
    "NCC": (
        ("Giải quyết chế độ trợ cấp thờ cúng liệt sĩ", "Quyết định trợ cấp thờ cúng liệt sĩ"),
        ("Giải quyết chế độ mai táng phí đối với cựu chiến binh", "Quyết định trợ cấp mai táng phí"),
        ("Cấp giấy xác nhận thân nhân của người có công", "Giấy xác nhận thân nhân người có công"),
        ("Giải quyết trợ cấp một lần khi người có công từ trần", "Quyết định trợ cấp một lần"),
    ),
    "NN": (
        ("Hỗ trợ khôi phục sản xuất vùng bị thiệt hại do thiên tai", "Quyết định hỗ trợ khôi phục sản xuất"),
        ("Xác nhận bảng kê lâm sản", "Bảng kê lâm sản đã xác nhận"),
        ("Cấp giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm nông lâm thủy sản",
         "Giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm"),
        ("Phê duyệt kế hoạch khuyến nông địa phương", "Quyết định phê duyệt kế hoạch khuyến nông"),
    ),
    "GT": (
        ("Đổi giấy phép lái xe do ngành Giao thông vận tải cấp", "Giấy phép lái xe"),
        ("Cấp phù hiệu xe kinh doanh vận tải", "Phù hiệu xe"),
        ("Cấp giấy phép thi công công trình đường bộ", "Giấy phép thi công"),
        ("Cấp giấy phép lưu hành xe quá tải trọng", "Giấy phép lưu hành xe"),
    ),
    "GD": (
        ("Công nhận trường đạt chuẩn quốc gia", "Quyết định công nhận trường đạt chuẩn quốc gia"),
        ("Cho phép trung tâm ngoại ngữ, tin học hoạt động giáo dục", "Quyết định cho phép hoạt động giáo dục"),
        ("Chuyển trường đối với học sinh trung học cơ sở", "Giấy giới thiệu chuyển trường"),
        ("Cấp bản sao văn bằng, chứng chỉ từ sổ gốc", "Bản sao văn bằng, chứng chỉ"),
    ),
    "YT": (
        ("Cấp chứng chỉ hành nghề khám bệnh, chữa bệnh", "Chứng chỉ hành nghề khám bệnh, chữa bệnh"),
        ("Cấp giấy phép hoạt động đối với phòng khám chuyên khoa", "Giấy phép hoạt động"),
        ("Cấp giấy chứng nhận đủ điều kiện kinh doanh dược", "Giấy chứng nhận đủ điều kiện kinh doanh dược"),
        ("Cấp giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm", "Giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm"),
    ),
    "LLTP": (
        ("Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam", "Phiếu lý lịch tư pháp"),
        ("Cấp Phiếu lý lịch tư pháp cho cơ quan tiến hành tố tụng", "Phiếu lý lịch tư pháp số 2"),
    ),
    "VH": (
        ("Cấp giấy phép tổ chức lễ hội", "Giấy phép tổ chức lễ hội"),
        ("Cấp giấy phép đủ điều kiện kinh doanh dịch vụ karaoke", "Giấy phép kinh doanh dịch vụ karaoke"),
        ("Tiếp nhận thông báo tổ chức biểu diễn nghệ thuật", "Văn bản chấp thuận tổ chức biểu diễn"),
        ("Công nhận danh hiệu khu dân cư văn hóa", "Quyết định công nhận khu dân cư văn hóa"),
    ),
    "TN": (
        ("Cấp giấy phép khai thác, sử dụng nước mặt", "Giấy phép khai thác, sử dụng nước mặt"),
        ("Thẩm định báo cáo đánh giá tác động môi trường", "Quyết định phê duyệt kết quả thẩm định"),
        ("Cấp giấy phép môi trường", "Giấy phép môi trường"),
        ("Cấp giấy phép thăm dò nước dưới đất", "Giấy phép thăm dò nước dưới đất"),
    ),
    "CTH": (
        ("Cấp giấy phép bán lẻ sản phẩm rượu", "Giấy phép bán lẻ sản phẩm rượu"),
        ("Cấp giấy phép bán lẻ sản phẩm thuốc lá", "Giấy phép bán lẻ sản phẩm thuốc lá"),
        ("Cấp giấy chứng nhận đủ điều kiện cửa hàng bán lẻ LPG chai", "Giấy chứng nhận đủ điều kiện cửa hàng bán lẻ LPG chai"),
        ("Cấp giấy chứng nhận huấn luyện kỹ thuật an toàn vật liệu nổ công nghiệp",
         "Giấy chứng nhận huấn luyện kỹ thuật an toàn"),
    ),
}


def procedures_for(field_code: str, field_name: str) -> tuple[tuple[str, str], ...]:
    """Procedures of a field; a field the list does not know gets generic ones so that any
    province file works."""
    if field_code in PROCEDURES:
        return PROCEDURES[field_code]
    return tuple(
        (f"Thủ tục lĩnh vực {field_name} số {i}", f"Văn bản giải quyết thủ tục lĩnh vực {field_name} số {i}")
        for i in range(1, 4)
    )
